// The bench's own SMTP client: one connection per message, one command per reply (no pipelining), as smtp-source.
import { connect, type Socket } from 'node:net';

/**
 * A 4 KiB message in SMTP form (CRLF, no line starting with a dot), ending with the terminator. `head` goes first
 * (header lines, each ending in CRLF).
 */
export function smtpMessage4k(to: string, head = ''): Buffer {
  let m = `${head}From: bench@client.test\r\nTo: ${to}\r\nSubject: bench\r\n\r\n`;
  const line = `${'x'.repeat(70)}\r\n`;
  while (m.length + line.length <= 4096) m += line;
  return Buffer.from(`${m.padEnd(4094, 'y')}\r\n.\r\n`, 'latin1');
}

/** Reads replies; each call of the returned function resolves with the next complete reply's code (0: closed). */
function replies(sock: Socket): () => Promise<number> {
  let buf = '';
  const waiting: Array<(code: number) => void> = [];
  const ready: number[] = [];
  sock.on('data', (c: Buffer) => {
    buf += c.toString('latin1');
    let m: RegExpExecArray | null;
    while ((m = /^(\d{3}) [^\n]*\n/m.exec(buf)) !== null) {
      buf = buf.slice(m.index + m[0].length);
      const code = Number(m[1]);
      const w = waiting.shift();
      if (w) w(code);
      else ready.push(code);
    }
  });
  sock.on('close', () => {
    for (const w of waiting.splice(0)) w(0);
  });
  return () =>
    new Promise((resolve) => {
      const r = ready.shift();
      if (r !== undefined) resolve(r);
      else waiting.push(resolve);
    });
}

/** Sends `data` (from smtpMessage4k) to `to` in one session on 127.0.0.1:port; true when DATA was answered 250. */
export function sendOne(port: number, to: string, data: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    sock.on('error', () => resolve(false));
    const next = replies(sock);
    const step = async (line: string | Buffer, want: number): Promise<boolean> => {
      sock.write(line);
      return (await next()) === want;
    };
    void (async () => {
      const ok =
        (await next()) === 220 &&
        (await step('EHLO client.test\r\n', 250)) &&
        (await step('MAIL FROM:<bench@client.test>\r\n', 250)) &&
        (await step(`RCPT TO:<${to}>\r\n`, 250)) &&
        (await step('DATA\r\n', 354)) &&
        (await step(data, 250));
      sock.end('QUIT\r\n');
      resolve(ok);
    })();
  });
}
