// When the server stops, a session waiting for a command gets `421 4.3.2` and is drained (12d8319): the wait is ended
// by a zero cap, and that cap, left in place, made the drain cut the connection at once, before the 421 had left.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { harness } from '../../test/support/smtpd.js';

const SHUTTING_DOWN = '421 4.3.2 server shutting down, try again later (#4.3.2)\r\n';
/** One NOOP's reply after EHLO. */
const NOOP_REPLY = '250 2.0.0 ok\r\n';
/** NOOPs per batch: their replies (14,000 bytes) stay under the socket's high-water mark (16 KiB), so none waits. */
const BATCH = 1000;

/** Polls until `ok` holds (no time is asserted: the test's own timeout bounds it). */
async function until(ok: () => boolean): Promise<void> {
  while (!ok()) await sleep(2);
}

void test('stop: a client that reads slowly, whose replies fill the socket, still gets the whole 421 4.3.2 line before the close', async () => {
  const h = await harness({ limits: { maxNoop: Number.MAX_SAFE_INTEGER } });
  // the test accepts the connection and hands it to the listener, so that it can watch the server's side
  const accepted: Socket[] = [];
  const front = createServer({ pauseOnConnect: true }, (s) => {
    accepted.push(s);
    h.adopt(s);
  });
  front.listen(0, '127.0.0.1');
  await once(front, 'listening');
  const address = front.address();
  assert.ok(address !== null && typeof address === 'object');
  const client = connect({ host: '127.0.0.1', port: address.port, allowHalfOpen: true });
  try {
    await once(client, 'connect');
    await until(() => accepted.length === 1);
    const server = accepted[0] as Socket;
    // EHLO (so that the 421 carries its enhanced code), its reply read; from then on the client reads nothing
    let greeted = '';
    const greeting = (c: Buffer): void => void (greeted += c.toString('latin1'));
    client.on('data', greeting);
    client.write('EHLO c\r\n');
    await until(() => /\r\n250 [^\r]*\r\n$/.test(greeted));
    client.off('data', greeting);
    client.pause();
    // The client reads nothing for now: the server's replies pile up in the kernel's buffers, then in the socket's
    // own. Batches of NOOPs until one batch's replies could not all be handed to the kernel: the session then waits
    // for a command with a reply still in its socket, which is where the stop finds it.
    let noops = 0;
    for (;;) {
      const before = server.bytesWritten;
      client.write('NOOP\r\n'.repeat(BATCH));
      noops += BATCH;
      await until(() => server.bytesWritten >= before + BATCH * NOOP_REPLY.length);
      if (server.writableLength > 0) break;
    }
    assert.equal(server.writableNeedDrain, false, 'the session must be waiting for a command, not for its output');
    const stopped = h.close();
    // now the client reads all it was sent, and closes once the server has closed its side
    const chunks: Buffer[] = [];
    client.on('data', (c: Buffer) => chunks.push(c));
    client.on('end', () => client.end());
    client.on('error', () => undefined);
    client.resume(); // paused by hand above: a 'data' listener alone does not start it again
    await once(client, 'close');
    await stopped;
    const text = Buffer.concat(chunks).toString('latin1');
    assert.ok(text.endsWith(`${NOOP_REPLY}${SHUTTING_DOWN}`), `the end of what the client got: ${text.slice(-120)}`);
    assert.equal(text.split(NOOP_REPLY).length - 1, noops, 'every reply sent before the 421 arrived');
  } finally {
    client.destroy();
    front.close();
  }
});
