// msgauth: DKIM signing of outbound mail, SPF/DKIM/DMARC/ARC checks of inbound mail, the DNS records a domain needs.
export {
  KEY_ALGORITHMS,
  activeSelector,
  checkDomain,
  checkSelector,
  generateKey,
  listDomains,
  listSelectors,
  newSelector,
  publicRecord,
  readKey,
  setActive,
  zoneStrings,
  type KeyAlgorithm,
  type KeyOwner,
} from './keys.js';
export { wantedRecords, checkRecord, type DkimPublic } from './dns.js';
export { DkimSigner } from './sign.js';
export { checkInbound, type DnsResolve } from './verify.js';
