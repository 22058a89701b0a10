// quail filter: a qmail-queue program that asks clamd and spamd, then rejects, tags or quarantines, or queues.
import { copyFileSync, fstatSync, mkdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { errText } from '../core/index.js';
import { clamdScan, parseDaemonAddress, spamdCheck, type DaemonAddress } from './daemons.js';
import { filterTimeoutMs } from './hook.js';
import { encodeEnvelope } from './qmailqueue.js';
import { enqueue, receive, withSpoolDir, type QueueInjectIo, type Received } from './queue-inject.js';

type Action = 'reject' | 'tag' | 'quarantine';

/** The settings, from the environment tcp.smtp gives the session (and so the program). */
interface Settings {
  readonly clamd?: DaemonAddress;
  readonly virusAction: Exclude<Action, 'tag'>;
  readonly spamd?: DaemonAddress;
  readonly spamAction: Action;
  /** How long the scans of one message may take together (QUAIL_SCANTIMEOUT): each scan gets what is left. */
  readonly timeoutMs: number;
  /** The latest the scans may end, from the filter's start: QUAIL_FILTERTIMEOUT less the filter's margin. */
  readonly filterMs: number;
  /** QUAIL_SCANTIMEOUT does not fit in QUAIL_FILTERTIMEOUT: what the scans get instead, said on stderr at start. */
  readonly warning?: string;
}

/** Seconds the scans of one message may take together when QUAIL_SCANTIMEOUT does not say. */
const DEFAULT_SCAN_TIMEOUT = 60;

/**
 * What the filter keeps of QUAIL_FILTERTIMEOUT for itself (receiving, queueing, saying why it failed): a tenth, at
 * most 5 s. The scans end before smtpd kills the filter, so a scanner that stalls is a 451 whose log names it, not a
 * `qq timeout` that names nothing.
 */
const FILTER_MARGIN_MAX_MS = 5000;

/**
 * Reads QUAIL_CLAMD, QUAIL_VIRUSACTION, QUAIL_SPAMD, QUAIL_SPAMACTION, QUAIL_SCANTIMEOUT and QUAIL_FILTERTIMEOUT; a
 * string says what is wrong. The scans' one deadline is the sooner of QUAIL_SCANTIMEOUT after the first scan starts
 * and QUAIL_FILTERTIMEOUT (less the filter's margin) after the filter's start.
 */
export function filterSettings(env: NodeJS.ProcessEnv): Settings | string {
  const clamdText = env['QUAIL_CLAMD'];
  const spamdText = env['QUAIL_SPAMD'];
  const clamd = clamdText !== undefined && clamdText !== '' ? parseDaemonAddress(clamdText, 3310) : undefined;
  const spamd = spamdText !== undefined && spamdText !== '' ? parseDaemonAddress(spamdText, 783) : undefined;
  if (clamdText && !clamd) return `QUAIL_CLAMD="${clamdText}" is neither /path/to/socket nor host:port`;
  if (spamdText && !spamd) return `QUAIL_SPAMD="${spamdText}" is neither /path/to/socket nor host:port`;
  if (!clamd && !spamd) return 'neither QUAIL_CLAMD nor QUAIL_SPAMD is set (tcp.smtp): nothing to ask';
  const va = env['QUAIL_VIRUSACTION'] ?? 'reject';
  const sa = env['QUAIL_SPAMACTION'] ?? 'tag';
  if (va !== 'reject' && va !== 'quarantine') return `QUAIL_VIRUSACTION="${va}": use reject or quarantine`;
  if (sa !== 'reject' && sa !== 'tag' && sa !== 'quarantine')
    return `QUAIL_SPAMACTION="${sa}": use reject, tag or quarantine`;
  const st = env['QUAIL_SCANTIMEOUT'];
  const seconds = st === undefined || st === '' ? DEFAULT_SCAN_TIMEOUT : /^\d{1,5}$/.test(st) ? Number(st) : 0;
  if (seconds <= 0) return `QUAIL_SCANTIMEOUT="${st ?? ''}": use a number of seconds from 1 to 99999 (default 60)`;
  const whole = filterTimeoutMs(env['QUAIL_FILTERTIMEOUT']);
  const filterMs = whole - Math.min(FILTER_MARGIN_MAX_MS, whole / 10);
  return {
    ...(clamd ? { clamd } : {}),
    ...(spamd ? { spamd } : {}),
    virusAction: va,
    spamAction: sa,
    timeoutMs: seconds * 1000,
    filterMs,
    ...(seconds * 1000 > filterMs
      ? {
          warning:
            `QUAIL_SCANTIMEOUT=${seconds} s does not fit in QUAIL_FILTERTIMEOUT=${whole / 1000} s: the scans end ` +
            `${filterMs / 1000} s after the filter's start (set QUAIL_SCANTIMEOUT lower or QUAIL_FILTERTIMEOUT higher)`,
        }
      : {}),
  };
}

/** The refusal text for qmail-smtpd, on fd 4 when the caller gave one (a pipe or socket, never Node's own fds). */
function tell(text: string): void {
  try {
    const st = fstatSync(4);
    if (st.isFIFO() || st.isSocket()) writeSync(4, text);
  } catch {
    // no fd 4: the exit code's text is said
  }
}

function quarantine(io: QueueInjectIo, r: Received, why: string): string {
  const dir = join(io.root, 'queue', 'quarantine'); // the queue's account owns queue/, not the root
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const name = `${Math.floor(Date.now() / 1000)}.${process.pid}.${randomBytes(4).toString('hex')}`;
  copyFileSync(r.spool, join(dir, name));
  writeFileSync(
    join(dir, `${name}.env`),
    Buffer.concat([encodeEnvelope(r.sender, r.recipients), Buffer.from(`${why}\n`)]),
    {
      mode: 0o600,
    },
  );
  return name;
}

/** One run: receive, scan, act. Resolves with qmail-queue's exit code. */
export function runBuiltinFilter(io: QueueInjectIo): Promise<number> {
  // smtpd's QUAIL_FILTERTIMEOUT runs from the spawn: the deadline counts from this process's start, not from here
  const began = performance.timeOrigin;
  return withSpoolDir(io, 'quail filter', async (dir, say) => {
    const settings = filterSettings(io.env);
    if (typeof settings !== 'string' && settings.warning !== undefined)
      io.stderr(`quail filter: warning: ${settings.warning}\n`);
    const r = await receive(io, dir, say);
    if (typeof r === 'number') return r;
    if (typeof settings === 'string') {
      tell(`Zfilter misconfigured (#4.3.5)`);
      return say(55, settings);
    }
    const done: string[] = [];
    let headers = '';
    // one deadline for all the scans (QUAIL_SCANTIMEOUT from the first, and never past what fits in
    // QUAIL_FILTERTIMEOUT): each scan gets what the ones before it left
    const until = Math.min(Date.now() + settings.timeoutMs, began + settings.filterMs);
    const left = (name: string): number => {
      const ms = until - Date.now();
      if (ms <= 0) throw new Error(`${name} not asked: the scans' time is used up`);
      return ms;
    };
    try {
      if (settings.clamd) {
        const v = await clamdScan(settings.clamd, r.spool, left('clamd'));
        if (v.infected) {
          if (settings.virusAction === 'reject') {
            tell(`Dmessage refused: it contains a virus (${v.name}) (#5.7.1)`);
            return say(31, `virus ${v.name}: refused`);
          }
          const q = quarantine(io, r, `virus ${v.name}`);
          return say(0, `virus ${v.name}: quarantined as quarantine/${q}`);
        }
        done.push('clamd clean');
      }
      if (settings.spamd) {
        const v = await spamdCheck(settings.spamd, r.spool, statSync(r.spool).size, left('spamd'));
        const score = `score=${v.score.toFixed(1)} required=${v.threshold.toFixed(1)}`;
        headers += `X-Spam-Status: ${v.spam ? 'Yes' : 'No'}, ${score}\n`;
        if (v.spam) {
          if (settings.spamAction === 'reject') {
            tell(`Dmessage refused as spam (${score}) (#5.7.1)`);
            return say(31, `spam (${score}): refused`);
          }
          if (settings.spamAction === 'quarantine') {
            const q = quarantine(io, r, `spam ${score}`);
            return say(0, `spam (${score}): quarantined as quarantine/${q}`);
          }
          headers += 'X-Spam-Flag: YES\n';
          done.push(`spamd spam ${score}, tagged`);
        } else done.push(`spamd not spam ${score}`);
      }
    } catch (err) {
      // The client gets qmail's plain text for exit 71 (`451 mail server temporarily rejected message (#4.3.0)`):
      // the scanner's address and answer are ours, not the sender's. The detail goes to stderr, which smtpd logs.
      return say(71, `scan failed, message not taken: ${errText(err)}`);
    }
    return enqueue(io, r, say, `X-Quail-Filter: ${done.join('; ')}\n${headers}`);
  });
}
