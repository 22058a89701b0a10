// Issue 12, the end of DATA: every combination of CR, LF, NUL and '.' around it (the SMTP smuggling family), one
// tier: system (needs quail start)
// at a time and pipelined, with and without TLS, and a property-based generator (fast-check) of bodies cut into
// random TCP segments. Never a 250 for a refused message, never a second message out of one DATA; after every
// case the same processes serve, a fresh session gets its banner and a normal message is delivered.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { BOX, finishBystander, Hostile, openBystander } from '../../test/support/hostile.js';
import {
  assertSmtpLines,
  dataVerdict,
  decodedBody,
  endsOnlyAtTheEnd,
  freshLoopback,
  parallel,
  Wire,
} from '../../test/support/hostile-wire.js';
import { waitUntil } from '../../test/support/wait.js';

let h: Hostile;
/** A transaction left in the middle of DATA while the cases run, finished at the end: no case may disturb it. */
let bystander: Wire;
before(async () => {
  h = await Hostile.start('hostile-data');
  bystander = await openBystander(h);
});
after(async () => {
  await h.stop();
});

const SMUGGLER = 'smuggler@evil.test';
/** A whole second transaction hidden in the body: it must never become a message of its own. */
const SMUGGLED = `MAIL FROM:<${SMUGGLER}>\r\nRCPT TO:<${BOX}>\r\nDATA\r\nX-Smuggled: yes\r\n\r\nsmuggled\r\n`;

let caseNo = 0;

interface Outcome {
  /** Reply codes after the 354, in order (0 = the connection closed there). */
  readonly codes: number[];
  readonly text: string;
}

/**
 * One transaction whose body is `body` (the client adds the real CRLF.CRLF), then `after` (more commands) and
 * QUIT. `burst`: everything in one write before any reply is read (pipelining); else command by command.
 * `segments`: cut points for the body, each written separately (TCP segments).
 */
async function transaction(
  from: string,
  body: string,
  o: { burst?: boolean; tls?: boolean; after?: string; segments?: number[] } = {},
): Promise<Outcome> {
  const w = await Wire.connect(h.ports.smtp, { localAddress: freshLoopback() });
  try {
    assert.equal(await w.code(), 220);
    if (o.tls) {
      w.send('EHLO client.test\r\nSTARTTLS\r\n');
      assert.equal(await w.code(), 250);
      assert.equal(await w.code(), 220);
      await w.upgrade();
    }
    const head = `EHLO client.test\r\nMAIL FROM:<${from}>\r\nRCPT TO:<${BOX}>\r\nDATA\r\n`;
    const tail = `\r\n.\r\n${o.after ?? ''}QUIT\r\n`;
    if (o.burst) {
      w.send(Buffer.from(`${head}${body}${tail}`, 'latin1'));
      w.end();
    } else {
      w.send(head);
      const codes = [await w.code(), await w.code(), await w.code(), await w.code()];
      assert.deepEqual(codes, [250, 250, 250, 354], `before the body: ${w.received}`);
    }
    if (!o.burst) {
      let at = 0;
      for (const cut of [...(o.segments ?? []), body.length]) {
        if (cut > at) await w.write(Buffer.from(body.slice(at, cut), 'latin1'));
        at = Math.max(at, cut);
      }
      await w.write(tail);
      w.end();
    }
    assert.ok(await w.closes(20_000), `the session did not end within 20 s: ${w.received}`);
    assertSmtpLines(w.received, 'DATA case');
    const lines = w.received.split('\r\n');
    const codes = lines
      .slice(lines.findIndex((l) => l.startsWith('354 ')) + 1)
      .filter((l) => /^\d{3} /.test(l))
      .map((l) => Number(l.slice(0, 3)));
    return { codes, text: w.received };
  } finally {
    w.destroy();
  }
}

/** The oracle's outcome: the verdict, then 221 unless a bare LF closed the session. */
function expected(body: string, more: number[] = []): number[] {
  const v = dataVerdict(body);
  return v === 451 ? [451] : [v, ...more, 221];
}

function checkNoSmuggling(what: string, from: string, verdict: number): void {
  h.expectQueued(SMUGGLER, 0, `${what}: smuggled`);
  h.expectQueued(from, verdict === 250 ? 1 : 0, what);
}

/** Issue 12's list and its neighbours; none contains the real CRLF.CRLF (that would end DATA for real). */
const NAMED = [
  '\n.\n',
  '\r\n.\n',
  '\r.\r',
  '\n.\r\n',
  '\r\n.\r',
  '\r\n\0.\r\n',
  '\r.\r\n',
  '\n.\r',
  '\r\n.\0\r\n',
  '\0\r\n.\0\r\n',
  '\r\n.\r\r\n',
  '\r\r\n.\n',
  '\n\r\n.\n',
  '\r\n.\n\r\n',
  '\r\n..\r\n',
  '\r\n .\r\n',
  '\r\n.\r\0\n',
  '\r\0\n.\r\0\n',
  '.\r\n',
  '\r\n.',
  '\r\n',
];

void test('the SMTP smuggling family, one at a time and pipelined, plain and over STARTTLS', () =>
  h.guard(async () => {
    for (const x of NAMED) {
      const body = `Subject: smuggling\r\n\r\nbody${x}${SMUGGLED}`;
      assert.ok(endsOnlyAtTheEnd(body), JSON.stringify(x));
      for (const mode of ['lock-step', 'burst', 'tls', 'tls-burst'] as const) {
        const n = ++caseNo;
        const from = `s${n}@client.test`;
        const second = `second${n}@client.test`;
        const what = `${JSON.stringify(x)} ${mode}`;
        const burst = mode.endsWith('burst');
        // a burst carries a real second transaction after the real end: it is the only other message allowed
        const more = burst
          ? `MAIL FROM:<${second}>\r\nRCPT TO:<${BOX}>\r\nDATA\r\nSubject: second\r\n\r\nlegit\r\n.\r\n`
          : '';
        const out = await transaction(from, body, { burst, tls: mode.startsWith('tls'), after: more });
        assert.deepEqual(out.codes, expected(body, burst ? [250, 250, 354, 250] : []), `${what}:\n${out.text}`);
        checkNoSmuggling(what, from, dataVerdict(body));
        if (burst) h.expectQueued(second, dataVerdict(body) === 451 ? 0 : 1, `${what}: the legitimate second message`);
      }
      await h.health(`smuggling ${JSON.stringify(x)}`);
    }
  }));

void test('every combination of CR, LF, NUL and "." of length 1 to 5 before a hidden transaction, pipelined', () =>
  h.guard(async () => {
    const alphabet = ['\r', '\n', '\0', '.'];
    let combos = [''];
    const all: string[] = [];
    for (let len = 1; len <= 5; len++) {
      combos = combos.flatMap((c) => alphabet.map((a) => c + a));
      all.push(...combos);
    }
    for (let i = 0; i < all.length; i += 64) {
      const group = all.slice(i, i + 64).filter((x) => endsOnlyAtTheEnd(`body${x}${SMUGGLED}`));
      await parallel(group, 6, async (x) => {
        const from = `k${++caseNo}@client.test`;
        const body = `body${x}${SMUGGLED}`;
        const out = await transaction(from, body, { burst: true });
        assert.deepEqual(out.codes, expected(body), `${JSON.stringify(x)}:\n${out.text}`);
        checkNoSmuggling(JSON.stringify(x), from, dataVerdict(body));
      });
      await h.health(`combinations ${i}..${i + 63}`);
    }
  }));

const SEED = Number(process.env['HOSTILE_SEED'] ?? 1212);
const RUNS = Number(process.env['HOSTILE_RUNS'] ?? 100);

/** Bodies made of the pieces smuggling is made of, plus random text and random bytes. */
const piece = fc.oneof(
  fc.constantFrom(
    '\r',
    '\n',
    '\0',
    '.',
    '\r\n',
    '\r\n.',
    '\r\n..',
    '\n.\n',
    '\r.\r',
    '\r\n.\r',
    '\n.\r\n',
    '\r\n\0.',
    'DATA\r\n',
    '\r\n\r\n',
    ' ',
  ),
  fc.constantFrom(SMUGGLED, `MAIL FROM:<${SMUGGLER}>`, `RCPT TO:<${BOX}>`, 'Received: x\r\n', 'QUIT\r\n'),
  fc.string({ maxLength: 30 }),
  fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('latin1')),
);
const bodyArb = fc
  .array(piece, { maxLength: 25 })
  .map((p) => p.join(''))
  .filter(endsOnlyAtTheEnd);

void test(`property (fast-check, seed ${SEED}, ${RUNS} runs): any body in any TCP segmentation gets the oracle's verdict; an accepted one arrives intact`, () =>
  h.guard(async () => {
    const accepted: Array<{ n: number; body: string }> = [];
    await fc.assert(
      fc.asyncProperty(bodyArb, fc.array(fc.nat(300), { maxLength: 6 }), fc.boolean(), async (raw, cuts, burst) => {
        const n = ++caseNo;
        const from = `p${n}@client.test`;
        const body = `X-Case: ${n}\r\nSubject: property\r\n\r\n${raw}`;
        const segments = cuts.map((c) => Math.min(c, body.length)).sort((a, b) => a - b);
        const out = await transaction(from, body, { burst, segments });
        assert.deepEqual(out.codes, expected(body), `${JSON.stringify(raw)}:\n${out.text}`);
        checkNoSmuggling(JSON.stringify(raw), from, dataVerdict(body));
        if (dataVerdict(body) === 250) accepted.push({ n, body });
        await h.health(`property case ${n}`);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    // every accepted body is delivered once and whole: CRLF → LF, leading dots removed, nothing added or cut
    await h.health('property end');
    const files = new Map<number, string>();
    await waitUntil(
      () => {
        for (const f of h.maildir('box')) {
          const text = readFileSync(f, 'latin1');
          const m = /^X-Case: (\d+)$/m.exec(text);
          if (m) files.set(Number(m[1]), text);
        }
        return files.size >= accepted.length;
      },
      30_000,
      50,
    );
    for (const { n, body } of accepted) {
      const text = files.get(n);
      assert.ok(text !== undefined, `accepted case ${n} was not delivered`);
      assert.equal(text.slice(text.indexOf(`X-Case: ${n}\n`)), decodedBody(body), `case ${n} delivered differently`);
    }
  }));

void test('a session open through all the cases above is unaffected: its message is accepted and delivered', () =>
  h.guard(async () => {
    await finishBystander(h, bystander);
  }));
