// msgauth: DKIM signing of outbound mail, SPF/DKIM/DMARC/ARC checks of inbound mail, the DNS records a domain needs.
export {
  KEY_ALGORITHMS,
  activeKey,
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
  type DkimKey,
  type KeyAlgorithm,
  type KeyOwner,
} from './keys.js';
export { DkimSigner, signingDomain, type SignOutcome } from './sign.js';
