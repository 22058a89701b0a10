// The delivery kind end to end on real scenarios: a pass, and a changed expectation of each kind is caught.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runScenarioFile } from '../runner.js';
import { pinnedCorpus } from '../world.js';
import { sortBounceParagraphs } from './compare.js';
import { parseEnv0 } from './files.js';

const CORPUS = pinnedCorpus();
const isRoot = process.getuid?.() === 0;

type Json = Record<string, unknown>;

/** Runs scenario `id` after `change` edits its expected outcome; returns the result. */
async function runChanged(id: string, change: (s: Json) => void): Promise<{ status: string; text: string }> {
  const s = JSON.parse(readFileSync(join(CORPUS, `${id}.json`), 'utf8')) as Json;
  change(s);
  const dir = mkdtempSync(join(tmpdir(), 'quail-deliv-test-'));
  try {
    const p = join(dir, `${id}.json`);
    writeFileSync(p, JSON.stringify(s));
    const { result } = await runScenarioFile(p);
    return {
      status: result.status,
      text: result.status === 'fail' ? result.diff : result.status === 'skip' ? result.reason : '',
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void test('sortBounceParagraphs orders the <address>: paragraphs only', () => {
  const head = "Hi.\nI'm afraid I wasn't able to deliver your message to the following addresses.\nSorry.\n\n";
  const tail = '--- Below this line is a copy of the message.\n\n<z@x>: body\n';
  assert.equal(
    sortBounceParagraphs(`${head}<b@x>:\nB\n\n<a@x>:\nA\n\n${tail}`),
    `${head}<a@x>:\nA\n\n<b@x>:\nB\n\n${tail}`,
  );
  assert.equal(sortBounceParagraphs('no bounce\n'), 'no bounce\n');
});

void test('parseEnv0 splits NUL-separated NAME=value pairs', () => {
  assert.deepEqual(parseEnv0(Buffer.from('A=1\0B=x=y\0EMPTY=\0')), { A: '1', B: 'x=y', EMPTY: '' });
});

void test('rt-012 (remote 550 and 451, bounce through a sink) passes', { skip: !isRoot && 'needs root' }, async () => {
  assert.deepEqual(await runChanged('rt-012-remote-550-and-451', () => undefined), { status: 'pass', text: '' });
});

void test(
  'a changed report, state, bounce text or file is a FAIL naming it',
  { skip: !isRoot && 'needs root' },
  async () => {
    type Msg = { state: string; deliveries: Array<{ report: string }> };
    const msgs = (s: Json): Msg[] => (s['outcome'] as { messages: Msg[] }).messages;
    const r1 = await runChanged('rt-012-remote-550-and-451', (s) => {
      const d = msgs(s)[0]?.deliveries[0];
      if (d) d.report = 'changed';
    });
    assert.equal(r1.status, 'fail');
    assert.match(r1.text, /m1 deliveries: missing \[remote reject550@remote.test failure changed\]/);
    const r2 = await runChanged('rt-012-remote-550-and-451', (s) => {
      const m = msgs(s)[2];
      if (m) m.state = 'done';
    });
    assert.match(r2.text, /m2\.state: expected "done" got "still-queued"/);
    const r3 = await runChanged('rt-012-remote-550-and-451', (s) => {
      const r = (s['outcome'] as { remote: Array<{ data: string }> }).remote[0];
      if (r) r.data = r.data.replace('Giving up', 'Giving Up');
    });
    assert.match(r3.text, /remote: .*Giving Up/);
    const r4 = await runChanged('pg-001-program-stdin-is-raw-message', (s) => {
      const f = (s['outcome'] as { files: Array<{ mode: string }> }).files[0];
      if (f) f.mode = '0644';
    });
    assert.match(r4.text, /files: @ROOT@\/home\/qoalice\/stdin.txt: line 1 expected .*mode=0644/);
  },
);
