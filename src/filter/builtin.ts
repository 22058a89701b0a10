// quail filter: a qmail-queue program that asks clamd and spamd, then rejects, tags or quarantines, or queues.
import { copyFileSync, fstatSync, mkdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { errText } from '../core/index.js';
import { clamdScan, parseDaemonAddress, spamdCheck, type DaemonAddress } from './daemons.js';
import { encodeEnvelope } from './qmailqueue.js';
import { enqueue, receive, withSpoolDir, type QueueInjectIo, type Received } from './queue-inject.js';

type Action = 'reject' | 'tag' | 'quarantine';

/** The settings, from the environment tcp.smtp gives the session (and so the program). */
interface Settings {
  readonly clamd?: DaemonAddress;
  readonly virusAction: Exclude<Action, 'tag'>;
  readonly spamd?: DaemonAddress;
  readonly spamAction: Action;
  readonly timeoutMs: number;
}

/** Seconds one scan (one scanner's whole exchange) may take when QUAIL_SCANTIMEOUT does not say. */
const DEFAULT_SCAN_TIMEOUT = 60;

/**
 * Reads QUAIL_CLAMD, QUAIL_VIRUSACTION, QUAIL_SPAMD, QUAIL_SPAMACTION, QUAIL_SCANTIMEOUT; a string says what is
 * wrong.
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
  return {
    ...(clamd ? { clamd } : {}),
    ...(spamd ? { spamd } : {}),
    virusAction: va,
    spamAction: sa,
    timeoutMs: seconds * 1000,
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
  return withSpoolDir(io, 'quail filter', async (dir, say) => {
    const settings = filterSettings(io.env);
    const r = await receive(io, dir, say);
    if (typeof r === 'number') return r;
    if (typeof settings === 'string') {
      tell(`Zfilter misconfigured (#4.3.5)`);
      return say(55, settings);
    }
    const done: string[] = [];
    let headers = '';
    try {
      if (settings.clamd) {
        const v = await clamdScan(settings.clamd, r.spool, settings.timeoutMs);
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
        const v = await spamdCheck(settings.spamd, r.spool, statSync(r.spool).size, settings.timeoutMs);
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
