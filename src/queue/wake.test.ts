// Tests of wake-up sockets: as root on a queue owned by another account, that account can connect (the SMTP child's case).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openQueue } from './index.js';

const OWNER = { uid: 54321, gid: 54322 }; // an account that is not root (numeric: need not exist in passwd)

/** Runs a node process as OWNER that connects to `sock` and writes `line`; resolves with its exit code. */
function sendAs(sock: string, line: string): Promise<number | null> {
  const script =
    `const s=require('node:net').createConnection(${JSON.stringify(sock)});` +
    `s.on('connect',()=>s.end(${JSON.stringify(line)}));s.on('error',(e)=>{console.error(e.code);process.exit(3)});`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', script], {
      uid: OWNER.uid,
      gid: OWNER.gid,
      stdio: 'inherit',
      cwd: '/',
    });
    child.on('exit', (code) => resolve(code));
  });
}

void test('wake socket: given to the owner of queue/ with mode 0660; that account can send a wake-up', async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('needs root (chown)');
    return;
  }
  const root = mkdtempSync(join(tmpdir(), 'quail-wake-'));
  chmodSync(root, 0o711);
  mkdirSync(join(root, 'queue'), { mode: 0o700 });
  chownSync(join(root, 'queue'), OWNER.uid, OWNER.gid);
  const q = await openQueue(root);
  try {
    const got: string[] = [];
    let resolveWake: () => void = () => undefined;
    const woken = new Promise<void>((r) => (resolveWake = r));
    const unwatch = q.watch((what) => {
      got.push(what);
      resolveWake();
    });
    const wakeDir = join(root, 'queue', 'wake');
    let socks: string[] = [];
    let st: Stats | undefined;
    for (let i = 0; i < 200; i++) {
      socks = readdirSync(wakeDir).filter((n) => n.endsWith('.sock'));
      st = socks[0] === undefined ? undefined : statSync(join(wakeDir, socks[0]));
      if (st && (st.mode & 0o777) === 0o660) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(socks.length, 1);
    assert.ok(st);
    assert.equal(st.uid, OWNER.uid);
    assert.equal(st.gid, OWNER.gid);
    assert.equal(st.mode & 0o777, 0o660);
    assert.equal(await sendAs(join(wakeDir, socks[0] ?? ''), 'new\n'), 0);
    await woken;
    assert.deepEqual(got, ['new']);
    unwatch();
  } finally {
    q.close();
    rmSync(root, { recursive: true, force: true });
  }
});
