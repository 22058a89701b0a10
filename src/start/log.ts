// The event log of `quail start`: one line per event, `key=value` text or JSON (pino), recent errors kept on disk.
import { appendFileSync, renameSync, statSync } from 'node:fs';
import { pino, type Logger } from 'pino';
import { isEventName, type EventName } from './events.js';
import { LOG_WINDOW_MS } from './log-batch.js';

export type Level = 'info' | 'warn' | 'error';

/** The one logger: every event by its catalogued name (events.ts). */
export interface EventLog {
  event(name: EventName, fields: Readonly<Record<string, unknown>>, level?: Level): void;
}

/**
 * An event a child process sent over IPC: logged when its name is in the catalogue (so nothing the child says can
 * put a line break or a made-up name into root's log), dropped otherwise.
 */
export function relayEvent(log: EventLog, name: unknown, fields: unknown): void {
  if (!isEventName(name) || typeof fields !== 'object' || fields === null || Array.isArray(fields)) return;
  log.event(name, fields as Readonly<Record<string, unknown>>);
}

/** Events that count as errors for `quail status` (and are logged at level error). */
export function levelOf(name: string): Level {
  let level = levels.get(name);
  if (level === undefined) {
    level = /\.(error|alert|queue-failed|crashed)$/.test(name)
      ? 'error'
      : /\.(warning|refused)$/.test(name)
        ? 'warn'
        : 'info';
    if (isEventName(name)) levels.set(name, level); // catalogued names only: the map stays small
  }
  return level;
}

/** Each event name's level, worked out once: root logs several events per message (docs/PERFORMANCE.md). */
const levels = new Map<string, Level>();

const quote = (v: unknown): string => {
  const s = typeof v === 'string' ? v : (JSON.stringify(v) ?? 'undefined');
  return /^[^\s"=]*$/.test(s) && s !== '' ? s : JSON.stringify(s);
};

/** `2024-05-01T10:00:00.000Z info smtp.queued id=... ip=127.0.0.1` — stable order: time, level, event, fields. */
export function textLine(now: Date, level: Level, name: string, fields: Readonly<Record<string, unknown>>): string {
  let line = `${now.toISOString()} ${level} ${name}`;
  for (const k of Object.keys(fields)) line += ` ${k}=${quote(fields[k])}`;
  return line;
}

const ERRORS_MAX = 256 * 1024;

export function makeEventLog(opts: {
  readonly json: boolean;
  readonly out: NodeJS.WritableStream;
  /** <root>/run/errors.log: error events, read by `quail status`. */
  readonly errorsFile?: string;
  readonly clock?: () => Date;
}): EventLog {
  const clock = opts.clock ?? (() => new Date());
  const logger: Logger | undefined = opts.json
    ? pino({ base: null, timestamp: pino.stdTimeFunctions.isoTime, messageKey: 'event' }, opts.out)
    : undefined;
  // Text lines of a short window go out in one write (docs/PERFORMANCE.md: a message makes eight events, and stdout
  // on a pipe is a synchronous write per call); what waits is written at exit too, so nothing is dropped.
  let pending = '';
  const flush = (): void => {
    if (pending === '') return;
    const text = pending;
    pending = '';
    opts.out.write(text);
  };
  process.once('exit', flush);
  return {
    event(name, fields, level = levelOf(name)) {
      const now = clock();
      if (logger) logger[level]({ ...fields }, name);
      else {
        if (pending === '') setTimeout(flush, LOG_WINDOW_MS).unref();
        pending += `${textLine(now, level, name, fields)}\n`;
        if (pending.length >= 65536) flush();
      }
      if (level === 'error' && opts.errorsFile) {
        try {
          if ((statSync(opts.errorsFile, { throwIfNoEntry: false })?.size ?? 0) > ERRORS_MAX) {
            renameSync(opts.errorsFile, `${opts.errorsFile}.1`);
          }
          appendFileSync(opts.errorsFile, `${textLine(now, level, name, fields)}\n`);
        } catch {
          // the error list is a convenience for `quail status`; the log line above is the record
        }
      }
    },
  };
}
