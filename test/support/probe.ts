// Test helpers (not a test): one probe per listener kind of control/listeners, and a loop that probes a port without
// pause and records every connection that was held without an answer or, while the service must be up, refused.
import { connect } from 'node:net';

/** What a probe saw: 'ok', 'refused', 'hung', or the start of a wrong answer. */
export type ProbeResult = 'ok' | 'refused' | 'hung' | `wrong: ${string}`;

interface Probe {
  /** Written once connected ('' = wait for the server to speak first). */
  readonly say: string;
  /** The first answer is right. */
  readonly good: RegExp;
  /** HTTP: the whole head is read (up to the blank line), so root's 503 with retry-after counts as an answer. */
  readonly http?: true;
}

const banner = (good: RegExp): Probe => ({ say: '', good });
const http: Probe = { say: 'GET / HTTP/1.0\r\nHost: probe.test\r\n\r\n', good: /^HTTP\/1\.[01] \d\d\d /, http: true };
/**
 * What root says on an HTTP connection whose child died before answering (the request it read is gone) or that no
 * child took in time: a 503 that tells the client to try again, which is an answer, not a refusal.
 */
const TRY_AGAIN = /^HTTP\/1\.1 503 Service Unavailable\r\nretry-after: 1\r\n/;

/** Every listener kind quail has; a kind missing here fails the test that meets it, so a new kind gets a probe. */
const PROBES: Readonly<Record<string, Probe>> = {
  smtp: banner(/^220 /),
  submission: banner(/^220 /),
  odmr: banner(/^220 /),
  pop3: banner(/^\+OK/),
  metrics: { say: 'GET /metrics HTTP/1.0\r\n\r\n', good: /^HTTP\/1\.[01] 200 /, http: true },
  admin: http,
  web: http,
};

export function hasProbe(kind: string): boolean {
  return Object.hasOwn(PROBES, kind);
}

/** One connection to `port` as a client of `kind`; bounded by `deadlineMs`, so a held connection is 'hung'. */
function probe(kind: string, port: number, deadlineMs = 20_000, host = '127.0.0.1'): Promise<ProbeResult> {
  const p = PROBES[kind];
  if (!p || !Object.hasOwn(PROBES, kind)) throw new Error(`no probe for listener kind ${kind}: add one to probe.ts`);
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let got = '';
    const end = (r: ProbeResult): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => end('hung'), deadlineMs);
    s.once('connect', () => {
      if (p.say !== '') s.write(p.say);
    });
    s.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      if (!got.includes(p.http ? '\r\n\r\n' : '\n')) return;
      end(p.good.test(got) || (p.http && TRY_AGAIN.test(got)) ? 'ok' : `wrong: ${JSON.stringify(got.slice(0, 80))}`);
    });
    s.once('error', (err: NodeJS.ErrnoException) =>
      end(err.code === 'ECONNREFUSED' ? 'refused' : `wrong: ${err.code ?? err.message}`),
    );
    s.once('close', () => end(got === '' ? 'refused' : `wrong: closed after ${JSON.stringify(got.slice(0, 80))}`));
  });
}

export interface ProbeLoop {
  /** From now on a connection that is not answered rightly is a failure (the service is meant to be up). */
  mustAnswer(on: boolean): void;
  /** Ends the loop; resolves with the number of connections made. */
  stop(): Promise<number>;
}

/**
 * Probes `port` every `everyMs` until stopped. A hung connection is always recorded in `bad`; a refusal or a wrong
 * answer only when the whole connection fell inside a mustAnswer(true) period (one begun before the service listened,
 * or answered after its stop began, may rightly be refused).
 */
export function probeLoop(kind: string, port: number, bad: string[], everyMs = 25): ProbeLoop {
  let must = false;
  let running = true;
  let count = 0;
  const done = (async () => {
    while (running) {
      const judged = must;
      const r = await probe(kind, port);
      count++;
      if (r === 'hung') bad.push(`${kind} :${port} connection ${count} got no answer within 20 s`);
      else if (judged && must && r !== 'ok') bad.push(`${kind} :${port} connection ${count} while up: ${r}`);
      await new Promise((res) => setTimeout(res, everyMs));
    }
    return count;
  })();
  return {
    mustAnswer: (on) => {
      must = on;
    },
    stop: async () => {
      running = false;
      return done;
    },
  };
}
