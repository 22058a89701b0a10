// The supervisor's side: keeps run/offices.json and qmail's files in step with the shared directory, by LISTEN/NOTIFY
// and a periodic check.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { errText } from '../core/index.js';
import { checkDrift, openDirectory, repairDrift, shareWithDeliveryGroup, type Directory } from '../directory/index.js';
import { MOVE_LINGER_MS, movePass, type MovePassReport } from './mover.js';
import { tableFile } from './router.js';
import { trustedSource } from './trust.js';
import { loadTable, type OfficeTable } from './table.js';

export interface KeeperEvents {
  /** The table was read and written: how many offices and mailboxes, and the qmail files repaired (0: none). */
  loaded(fields: { office: string; offices: number; mailboxes: number; repaired: number; why: string }): void;
  /** The directory could not be read (the old table stays in use) or the listening connection was lost. */
  error(fields: { office: string; error: string }): void;
  /** A pass of mailbox moves did something: files carried out, written in, removed here. */
  moving(fields: { office: string; pushed: number; written: number; removed: number }): void;
  /** A mailbox's move is finished: every file written at its new office, none left at the old. */
  moved(fields: { office: string; address: string; from: string; to: string; files: number; note: string }): void;
}

export interface KeeperOptions {
  readonly root: string;
  /** This server's office (control/office). */
  readonly office: string;
  /** Seconds between the periodic checks (control/officerefresh). */
  readonly intervalSeconds: number;
  readonly events: KeeperEvents;
  /** qmail's routing files changed (the scheduler must re-read virtualdomains: a reload). */
  readonly onFilesChanged: () => void;
  /** A mailbox's home office changed (a move): mail waiting for it should be tried again now (a flush). */
  readonly onHomesChanged?: () => void;
  /** Tests: a directory to use instead of opening the root's. */
  readonly open?: () => Promise<Directory>;
}

/** Notifications arriving together are handled as one refresh this long after the first. */
const SETTLE_MS = 200;
/** Moves' notifications come in bursts (a file at a time): handled together. */
const MOVE_SETTLE_MS = 50;

export class OfficeKeeper {
  private dir: Directory | null = null;
  private watch: { close(): Promise<void> } | null = null;
  private timer: NodeJS.Timeout | undefined;
  private settle: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private again: { why: string; full: boolean } | null = null;
  private homes: OfficeTable['homes'] | null = null;
  private stopped = false;
  private pendingFull = false;

  constructor(private readonly o: KeeperOptions) {}

  /** The first refresh (its trouble logged, not thrown: an old table may serve), then the listener and the timer. */
  async start(): Promise<void> {
    await this.refresh('start');
    this.timer = setInterval(() => void this.refresh('periodic check'), this.o.intervalSeconds * 1000);
    this.timer.unref();
  }

  /**
   * Asks for a refresh (`full`: the table and qmail's files, then the moves; else the moves only); one runs at a
   * time, and requests during one run once after it.
   */
  refresh(why: string, full = true): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = { why, full: full || (this.again?.full ?? false) };
      return this.running;
    }
    this.running = (async () => {
      let next: { why: string; full: boolean } | null = { why, full };
      while (next !== null && !this.stopped) {
        this.again = null;
        if (next.full) await this.once(next.why);
        else await this.moves();
        next = this.again;
      }
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async directory(): Promise<Directory> {
    if (this.dir) return this.dir;
    // Not read-only: the moves write their progress (the table itself is only read).
    const dir = await (this.o.open ?? (() => openDirectory({ root: this.o.root })))();
    this.dir = dir;
    return dir;
  }

  private async listen(dir: Directory): Promise<void> {
    if (this.watch || this.stopped) return;
    this.watch = await dir.watchChanges(
      (table) => {
        // A move's progress wakes the moves only; anything else the whole refresh.
        const full = table !== 'mailbox_moves' && table !== 'move_files';
        this.pendingFull ||= full;
        if (this.settle) return;
        this.settle = setTimeout(
          () => {
            this.settle = undefined;
            const f = this.pendingFull;
            this.pendingFull = false;
            void this.refresh(f ? 'directory notification' : 'mailbox move', f);
          },
          full ? SETTLE_MS : MOVE_SETTLE_MS,
        );
      },
      (err) => {
        this.watch = null;
        this.o.events.error({ office: this.o.office, error: `listening for directory changes: ${errText(err)}` });
        // The periodic check covers the gap and listens again.
      },
    );
  }

  private async once(why: string): Promise<void> {
    try {
      const dir = await this.directory();
      await this.listen(dir);
      // As root, from rows any office writes: refused ones are left out and said once per refresh (trust.ts).
      const said = new Set<string>();
      const refused = (error: string): void => {
        if (!said.has(error)) this.o.events.error({ office: this.o.office, error });
        said.add(error);
      };
      const table = await loadTable(dir, Date.now(), refused);
      const file = tableFile(this.o.root);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(`${file}.tmp`, `${JSON.stringify(table)}\n`, { mode: 0o640 });
      shareWithDeliveryGroup(this.o.root, `${file}.tmp`);
      renameSync(`${file}.tmp`, file);
      const moved =
        this.homes !== null &&
        Object.entries(table.homes).some(([a, o]) => {
          const was = this.homes?.[a];
          return was !== undefined && was !== o;
        });
      this.homes = table.homes;
      const src = trustedSource(this.o.root, dir, refused);
      const drift = await checkDrift(this.o.root, src);
      if (drift.length > 0) {
        await repairDrift(this.o.root, src);
        this.o.onFilesChanged();
      }
      this.o.events.loaded({
        office: this.o.office,
        offices: table.offices.length,
        mailboxes: Object.keys(table.homes).length,
        repaired: drift.length,
        why,
      });
      if (moved) this.o.onHomesChanged?.();
      await dir.pruneMoveFiles(Date.now() - MOVE_LINGER_MS);
      await this.moves();
    } catch (err) {
      this.o.events.error({ office: this.o.office, error: errText(err) });
      // Open again next time: the connection may be what failed.
      const d = this.dir;
      this.dir = null;
      await this.watch?.close().catch(() => undefined);
      this.watch = null;
      await d?.close().catch(() => undefined);
    }
  }

  /** One pass of this office's mailbox moves (src/offices/mover.ts); trouble is an error event, retried later. */
  private async moves(): Promise<void> {
    let dir: Directory;
    try {
      dir = await this.directory();
    } catch (err) {
      this.o.events.error({ office: this.o.office, error: errText(err) });
      return;
    }
    let r: MovePassReport;
    // Passes repeat while they get somewhere (a move's next step may be this server's own).
    for (let i = 0; i < 100 && !this.stopped; i++) {
      r = await movePass({ root: this.o.root, office: this.o.office, dir });
      for (const e of r.errors) this.o.events.error({ office: this.o.office, error: e });
      if (r.pushed + r.written + r.removed > 0)
        this.o.events.moving({ office: this.o.office, pushed: r.pushed, written: r.written, removed: r.removed });
      for (const m of r.finished)
        this.o.events.moved({
          office: this.o.office,
          address: `${m.local}@${m.domain}`,
          from: m.from,
          to: m.to,
          files: m.files,
          note: m.note,
        });
      if (r.written + r.removed === 0 && r.finished.length === 0) break;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.settle);
    await this.running;
    await this.watch?.close().catch(() => undefined);
    await this.dir?.close().catch(() => undefined);
    this.watch = null;
    this.dir = null;
  }
}
