// lists: mailing lists the ezmlm way — `.qmail-LIST` files, cookie confirmations, VERP bounces, moderation, archive.
export {
  addMembers,
  createList,
  deleteList,
  getList,
  listFileDrift,
  listHome,
  listMembers,
  mayManageList,
  parseListAddress,
  removeMembers,
  repairListFiles,
  setListOptions,
  type Actor,
  type ListDrift,
  type ListCtx,
  type NewList,
} from './admin.js';
export { describeListAddress } from './address.js';
export { archiveIndex, archiveMessage, type ArchiveEntry } from './archive.js';
export { decideHeld, heldPosts, type HeldPost } from './held.js';
export { makeCookie } from './cookie.js';
export { oneClickUnsubscribe, ONE_CLICK_PREFIX, type OneClickAnswer } from './oneclick.js';
export { runListProgram, chooseWriter, bounceRule } from './run.js';
export { listSocketPath, serveListSocket } from './socket.js';
export {
  applyWrite as applyWriteRequest,
  directWriter,
  type ListWriter,
  type WriteAnswer,
  type WriteRequest,
} from './writer.js';
