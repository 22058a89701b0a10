// A protocol's `open` that throws (a control file it reads per connection gone bad) loses that one connection: the
// error goes to acceptFailed, the connection is counted out, and the server goes on serving in the same process.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TcpServer } from './index.js';
import { collecting } from '../../test/support/start.js';
import { waitFor } from '../../test/support/wait.js';

void test('open() throwing closes that connection, reports the error and leaves the server serving', async () => {
  let throwing = true;
  const failures: string[] = [];
  const server = new TcpServer({
    maxConnections: 1,
    maxPerIp: 1,
    paused: false,
    halfOpen: false,
    tooMany: () => 'too many\r\n',
    open: (socket) => {
      if (throwing) throw new Error('EISDIR: illegal operation on a directory, read');
      socket.end('hello\r\n');
      return { done: new Promise((r) => socket.on('close', r)) };
    },
    acceptFailed: (err) => failures.push(err.message),
  });
  const { port } = await server.listen(0, '127.0.0.1');
  try {
    const first = collecting(port);
    await waitFor(
      () => first.closed(),
      5_000,
      () => 'the connection whose open threw was not closed',
    );
    assert.equal(first.got(), '');
    assert.deepEqual(failures, ['EISDIR: illegal operation on a directory, read']);
    // maxConnections is 1: had the failed connection not been counted out, this one would be refused
    throwing = false;
    const second = collecting(port);
    await waitFor(
      () => second.closed(),
      5_000,
      () => 'the next connection was not served',
    );
    assert.equal(second.got(), 'hello\r\n');
  } finally {
    await server.close(0);
  }
});
