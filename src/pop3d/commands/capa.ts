// RFC 2449 CAPA: what this session offers right now (USER / SASL only where plaintext logins are allowed).
import type { Session } from '../session.js';

export function capa(s: Session): string[] {
  const lines = ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING'];
  if (s.state === 'authorization') {
    if (s.plaintextAllowed()) lines.push('USER', 'SASL PLAIN');
    if (s.tlsOffered()) lines.push('STLS');
  }
  lines.push('EXPIRE NEVER', 'IMPLEMENTATION quail');
  return lines;
}
