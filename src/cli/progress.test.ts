// The progress bars of the long commands: drawn on a terminal only, nothing at all on a pipe or file.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { progressBar } from './progress.js';

/** A stream that says it is (or is not) a terminal, and keeps what was written. */
function stream(isTTY: boolean): { s: NodeJS.WriteStream; text: () => string } {
  let text = '';
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  Object.assign(w, { isTTY, columns: 100, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
  return { s: w as unknown as NodeJS.WriteStream, text: () => text };
}

void test('on a terminal the bar shows the label, done/total and the stage', () => {
  const t = stream(true);
  const bar = progressBar('queue export', t.s);
  bar.tick(1, 3, 'messages');
  bar.tick(3, 3, 'messages');
  bar.stop();
  bar.stop(); // twice is harmless (commands stop in finally too)
  assert.match(t.text(), /queue export \[[^\]]*\] 3\/3 messages/);
});

void test('not a terminal: nothing is written', () => {
  const t = stream(false);
  const bar = progressBar('queue export', t.s);
  bar.tick(1, 3, 'messages');
  bar.stop();
  assert.equal(t.text(), '');
});
