// bindShared: a socket bound for another process to accept on. Survival across that process's death is tested as
// root through quail start (src/start/privsep.test.ts, adopt.test.ts, outage.test.ts); here, what one process sees.
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { bindShared, canShareListen, TcpServer } from './index.js';

const connectResult = (port: number): Promise<string> =>
  new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let got = '';
    s.on('data', (c: Buffer) => (got += c.toString('latin1')));
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    s.on('close', () => resolve(got));
  });

void test('bindShared: bound but not listening until a TcpServer listens on it; then that server accepts', async () => {
  assert.equal(canShareListen(), true, 'this Node can bind a socket for another process');
  const shared = bindShared('127.0.0.1', 0);
  assert.ok(shared.port > 0);
  try {
    assert.equal(await connectResult(shared.port), 'ECONNREFUSED', 'nothing listens before the accepter does');
    const server = new TcpServer({
      maxConnections: 10,
      maxPerIp: 10,
      paused: false,
      halfOpen: false,
      tooMany: () => undefined,
      open: (socket) => {
        socket.end('hello\r\n');
        return { done: new Promise((r) => socket.on('close', r)) };
      },
      acceptFailed: () => undefined,
    });
    const a = await server.listen(shared.handle);
    assert.equal(a.port, shared.port);
    assert.equal(await connectResult(shared.port), 'hello\r\n');
    await server.close(0);
  } finally {
    shared.close();
  }
});

void test('bindShared: a port in use is the system error, as listen would report it', async () => {
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  const port = (taken.address() as AddressInfo).port;
  try {
    assert.throws(() => bindShared('127.0.0.1', port), { code: 'EADDRINUSE', message: /EADDRINUSE 127\.0\.0\.1:/ });
  } finally {
    taken.close();
  }
});
