// Maildir delivery: tmp/<unique> (O_EXCL, 0600), prefix + message, fsync, link to new/, unlink tmp.
import { constants } from 'node:fs';
import { link, open, stat, unlink, access } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { UniqueNamer } from './unique.js';

export type MaildirResult =
  | { readonly kind: 'ok'; readonly name: string }
  /** The directory cannot be entered (qmail: `Unable to chdir to maildir.`). */
  | { readonly kind: 'nochdir'; readonly error: unknown }
  /** Reading the message failed. */
  | { readonly kind: 'read-error'; readonly error: unknown }
  /** Anything else (no tmp/, disk full, link failed...). */
  | { readonly kind: 'error'; readonly error: unknown };

const CHUNK = 65536;
const MAX_TRIES = 5;

/** Copies the whole of `src` (from offset 0) after `prefix` into `dst`; says which side failed. */
async function copyInto(dst: FileHandle, prefix: Buffer, messagePath: string): Promise<'read' | 'write' | null> {
  let src: FileHandle;
  try {
    src = await open(messagePath, 'r');
  } catch {
    return 'read';
  }
  try {
    if (prefix.length > 0) await dst.write(prefix, 0, prefix.length);
    const buf = Buffer.allocUnsafe(CHUNK);
    let pos = 0;
    for (;;) {
      let n: number;
      try {
        n = (await src.read(buf, 0, CHUNK, pos)).bytesRead;
      } catch {
        return 'read';
      }
      if (n === 0) return null;
      pos += n;
      await dst.write(buf, 0, n);
    }
  } catch {
    return 'write';
  } finally {
    await src.close();
  }
}

/**
 * Delivers `prefix` + the message file into the Maildir `dir` (absolute). The file is complete and fsynced in
 * tmp/ before it appears in new/, so a reader never sees a partial message (maildir(5)).
 */
export async function deliverToMaildir(
  dir: string,
  prefix: Buffer,
  messagePath: string,
  namer: UniqueNamer,
): Promise<MaildirResult> {
  try {
    const st = await stat(dir);
    if (!st.isDirectory())
      return { kind: 'nochdir', error: Object.assign(new Error('not a directory'), { code: 'ENOTDIR' }) };
    await access(dir, constants.X_OK);
  } catch (error) {
    return { kind: 'nochdir', error };
  }
  let fh: FileHandle | undefined;
  let name = '';
  for (let tries = 0; ; tries++) {
    name = namer.next();
    try {
      fh = await open(`${dir}/tmp/${name}`, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      break;
    } catch (error) {
      if ((error as { code?: string }).code !== 'EEXIST' || tries >= MAX_TRIES) return { kind: 'error', error };
    }
  }
  const tmp = `${dir}/tmp/${name}`;
  const removeTmp = async (): Promise<void> => {
    await unlink(tmp).catch(() => undefined);
  };
  try {
    const failed = await copyInto(fh, prefix, messagePath);
    if (failed !== null) {
      await fh.close().catch(() => undefined);
      await removeTmp();
      return failed === 'read'
        ? { kind: 'read-error', error: new Error('cannot read message') }
        : { kind: 'error', error: new Error('write failed') };
    }
    await fh.sync();
    await fh.close();
  } catch (error) {
    await fh.close().catch(() => undefined);
    await removeTmp();
    return { kind: 'error', error };
  }
  try {
    await link(tmp, `${dir}/new/${name}`);
  } catch (error) {
    await removeTmp();
    return { kind: 'error', error };
  }
  await removeTmp();
  await syncDir(`${dir}/new`);
  return { kind: 'ok', name };
}

/** fsync the directory so the new link survives a crash (best effort: some filesystems refuse). */
async function syncDir(dir: string): Promise<void> {
  try {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // not fatal: qmail does not do it at all
  }
}
