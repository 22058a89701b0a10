// The supervisor's side: keeps run/offices.json and qmail's files in step with the shared directory, by LISTEN/NOTIFY
// and a periodic check.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { errText } from '../core/index.js';
import { checkDrift, openDirectory, repairDrift, shareWithDeliveryGroup, type Directory } from '../directory/index.js';
import { tableFile } from './router.js';
import { loadTable } from './table.js';

export interface KeeperEvents {
  /** The table was read and written: how many offices and mailboxes, and the qmail files repaired (0: none). */
  loaded(fields: { office: string; offices: number; mailboxes: number; repaired: number; why: string }): void;
  /** The directory could not be read (the old table stays in use) or the listening connection was lost. */
  error(fields: { office: string; error: string }): void;
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
  /** Tests: a directory to use instead of opening the root's. */
  readonly open?: () => Promise<Directory>;
}

/** Notifications arriving together are handled as one refresh this long after the first. */
const SETTLE_MS = 200;

export class OfficeKeeper {
  private dir: Directory | null = null;
  private watch: { close(): Promise<void> } | null = null;
  private timer: NodeJS.Timeout | undefined;
  private settle: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private again: string | null = null;
  private stopped = false;

  constructor(private readonly o: KeeperOptions) {}

  /** The first refresh (its trouble logged, not thrown: an old table may serve), then the listener and the timer. */
  async start(): Promise<void> {
    await this.refresh('start');
    this.timer = setInterval(() => void this.refresh('periodic check'), this.o.intervalSeconds * 1000);
    this.timer.unref();
  }

  /** Asks for a refresh; one runs at a time, and a request during one runs once after it. */
  refresh(why: string): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = why;
      return this.running;
    }
    this.running = (async () => {
      let next: string | null = why;
      while (next !== null && !this.stopped) {
        this.again = null;
        await this.once(next);
        next = this.again;
      }
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async directory(): Promise<Directory> {
    if (this.dir) return this.dir;
    const dir = await (this.o.open ?? (() => openDirectory({ root: this.o.root, readonly: true })))();
    this.dir = dir;
    return dir;
  }

  private async listen(dir: Directory): Promise<void> {
    if (this.watch || this.stopped) return;
    this.watch = await dir.watchChanges(
      () => {
        if (this.settle) return;
        this.settle = setTimeout(() => {
          this.settle = undefined;
          void this.refresh('directory notification');
        }, SETTLE_MS);
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
      const table = await loadTable(dir);
      const file = tableFile(this.o.root);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(`${file}.tmp`, `${JSON.stringify(table)}\n`, { mode: 0o640 });
      shareWithDeliveryGroup(this.o.root, `${file}.tmp`);
      renameSync(`${file}.tmp`, file);
      const drift = await checkDrift(this.o.root, dir);
      if (drift.length > 0) {
        await repairDrift(this.o.root, dir);
        this.o.onFilesChanged();
      }
      this.o.events.loaded({
        office: this.o.office,
        offices: table.offices.length,
        mailboxes: Object.keys(table.homes).length,
        repaired: drift.length,
        why,
      });
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
