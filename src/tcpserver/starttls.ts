// The server side of STARTTLS (SMTP, ODMR) and STLS (POP3, implicit TLS): TLS over a connection already accepted.
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';

/** How the caller waits for the handshake (true: done): at most `ms`, or less (a session reader's stress cap). */
export type HandshakeWait = (handshake: Promise<boolean>, ms: number) => Promise<boolean>;

/** The plain wait: the handshake, or false after `ms`. */
const timed: HandshakeWait = (handshake, ms) =>
  new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void handshake.then((v) => {
      clearTimeout(timer);
      resolve(v);
    });
  });

/**
 * Wraps `socket` in a server TLSSocket and waits for the handshake. Resolves with the TLS socket, or undefined (both
 * sockets destroyed) when the handshake failed, the client closed or half-closed, or `timeoutMs` passed. `made` is
 * called with the TLS socket before the handshake (to move a reader onto it). Errors of the TLS socket after the
 * handshake end it: the session's reader sees a close. `wait` lets a session wait as it waits for a read (src/lineio
 * Reader.until), so a listener's stress cap bounds the handshake too.
 */
export async function acceptTls(
  socket: Socket,
  context: SecureContext,
  timeoutMs: number,
  made?: (secure: TLSSocket) => void,
  wait: HandshakeWait = timed,
): Promise<TLSSocket | undefined> {
  const secure = new TLSSocket(socket, { isServer: true, secureContext: context });
  // A TLSSocket made by hand (not by tls.Server) reports its TLS errors only as '_tlsError': no 'error', no close. So
  // a forged or damaged record after the handshake left the session waiting for its idle timeout on a dead connection,
  // and a client renegotiating past Node's limit (tls.CLIENT_RENEG_LIMIT) was let go on. Destroying the socket ends
  // both (smtp-server listens to '_tlsError' the same way).
  secure.on('_tlsError', (err: Error) => secure.destroy(err));
  secure.on('error', () => undefined); // the reader sees the close
  made?.(secure);
  const handshake = new Promise<boolean>((resolve) => {
    secure.once('secure', () => resolve(true));
    secure.once('error', () => resolve(false));
    secure.once('close', () => resolve(false));
    // A client that closes its side before the handshake is done only makes the TLS socket emit 'end' (the TCP
    // connection is half-open, neither 'error' nor 'close' follows): without this the session waited for the timeout.
    secure.once('end', () => resolve(false));
  });
  const ok = await wait(handshake, timeoutMs);
  if (ok) return secure;
  secure.destroy();
  socket.destroy();
  return undefined;
}
