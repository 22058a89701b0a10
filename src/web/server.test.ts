// The web server's own limits, with a real socket on 127.0.0.1 and an app that answers slowly (as the real one does
// when it awaits the directory): a client that pipelines and never reads must not have every request rendered.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { Hono } from 'hono';
import { MAX_IN_FLIGHT, webServer } from './server.js';

async function slowServer(): Promise<{ port: number; calls: () => number; close: () => void }> {
  let calls = 0;
  const app = new Hono();
  app.get('/', async (c) => {
    calls++;
    await new Promise((r) => setTimeout(r, 200));
    return c.text('x'.repeat(4096));
  });
  const srv = webServer(app);
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  return {
    port: (srv.address() as AddressInfo).port,
    calls: () => calls,
    close: () => {
      srv.closeAllConnections();
      srv.close();
    },
  };
}

void test('a client that pipelines requests without reading is closed past MAX_IN_FLIGHT; the app sees no more', async () => {
  const s = await slowServer();
  try {
    const c = connect(s.port, '127.0.0.1');
    c.on('error', () => undefined);
    await once(c, 'connect');
    c.pause(); // never read
    c.write('GET / HTTP/1.1\r\nHost: a.test\r\n\r\n'.repeat(2000));
    await once(c, 'close');
    assert.ok(s.calls() <= MAX_IN_FLIGHT, `the app rendered ${s.calls()} requests of one connection`);
    assert.ok(s.calls() >= 1);
  } finally {
    s.close();
  }
});

void test('pipelined requests up to MAX_IN_FLIGHT are all answered, in order, on one connection', async () => {
  const s = await slowServer();
  try {
    const c = connect(s.port, '127.0.0.1');
    await once(c, 'connect');
    let got = '';
    c.on('data', (d: Buffer) => (got += d.toString('latin1')));
    c.write('GET / HTTP/1.1\r\nHost: a.test\r\n\r\n'.repeat(MAX_IN_FLIGHT - 1));
    c.write('GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
    await once(c, 'close');
    assert.equal(got.match(/HTTP\/1\.1 200 /g)?.length, MAX_IN_FLIGHT);
    assert.equal(s.calls(), MAX_IN_FLIGHT);
  } finally {
    s.close();
  }
});
