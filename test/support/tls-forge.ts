// A forged TLS record after STARTTLS, sent so that only the server can end the connection (SMTP and ODMR listeners).
import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { freshLoopback } from './hostile-wire.js';

/**
 * An SMTP-style STARTTLS (220, EHLO, 250, STARTTLS, 220) on `port`, the handshake and an EHLO by a TLS client whose bytes pass through
 * the test, then an application-data record of 32 zero bytes (no valid MAC) written on the TCP connection. The client
 * never sees what the server answers to it (an alert), so it cannot be the side that hangs up: true when the server
 * closed the connection within `ms`.
 */
export async function serverEndsAfterForgedRecord(port: number, ms: number): Promise<boolean> {
  const raw = await new Promise<Socket>((resolve, reject) => {
    const s = netConnect({ host: '127.0.0.1', port, localAddress: freshLoopback() });
    s.once('error', reject);
    s.once('connect', () => resolve(s));
  });
  raw.on('error', () => undefined);
  try {
    let text = '';
    let wake = (): void => undefined;
    const plain = (c: Buffer): void => {
      text += c.toString('latin1');
      wake();
    };
    raw.on('data', plain);
    const reply = (code: string): Promise<void> =>
      new Promise((resolve) => {
        wake = (): void => {
          const m = new RegExp(`(?:^|\r\n)${code} [^\r\n]*\r\n`).exec(text);
          if (m === null) return;
          text = text.slice(m.index + m[0].length);
          resolve();
        };
        wake();
      });
    await reply('220');
    raw.write('EHLO hostile.test\r\n');
    await reply('250');
    raw.write('STARTTLS\r\n');
    await reply('220');
    raw.off('data', plain);
    let forward = true;
    const pipe = new Duplex({
      read: () => undefined,
      write: (chunk: Buffer, _enc, done) => void raw.write(chunk, done),
    });
    raw.on('data', (c: Buffer) => void (forward && pipe.push(c)));
    const tls = tlsConnect({ socket: pipe, rejectUnauthorized: false, servername: 'mail.hostile.test' });
    tls.on('error', () => undefined);
    await once(tls, 'secureConnect');
    tls.write('EHLO hostile.test\r\n');
    await once(tls, 'data');
    forward = false;
    const closed = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      const gone = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      raw.once('end', gone);
      raw.once('close', gone);
    });
    raw.write(Buffer.concat([Buffer.from([0x17, 0x03, 0x03, 0x00, 0x20]), Buffer.alloc(32)]));
    const ended = await closed;
    tls.destroy();
    return ended;
  } finally {
    raw.destroy();
  }
}
