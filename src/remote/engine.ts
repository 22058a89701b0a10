// The long-lived remote side of quail start: connection reuse, per-destination limits, timeout memory, grouping.
import type { Control } from '../control/index.js';
import { asciiLower, splitAddress, type DeliveryResult } from '../core/index.js';
import type { RemoteJob } from './types.js';
import { deliverBatch, type RemoteOptions } from './deliver.js';
import { ConnectionPool } from './pool.js';
import { Tcpto, tcptoPath } from './tcpto.js';
import { EightBitCache } from './message.js';
import { cachedLocalAddresses } from './mx.js';

export interface RemoteEngineOptions extends Omit<RemoteOptions, 'control'> {
  /** The mail root (for run/tcpto). */
  readonly root: string;
  /**
   * A fresh Control snapshot (qmail-remote reads control files per delivery); taken once per turn of the event loop
   * for the deliveries that start in it.
   */
  readonly control: () => Control;
  /** Most connections busy at once to one IP:port (control/concurrencyremotehost, read once). */
  readonly perHost?: number;
  /** How long an idle connection is kept for the next message, in ms (default 5 s). */
  readonly idleMs?: number;
  /** Most recipients per transaction (RFC 5321 4.5.3.1.8 asks servers to take at least 100). */
  readonly maxRecipients?: number;
}

interface Pending {
  readonly job: RemoteJob;
  readonly resolve: (r: DeliveryResult) => void;
}

/**
 * `deliver(job)` has the per-recipient contract of deliverRemote (the scheduler calls it once per
 * recipient), but recipients of the same message, sender and host that arrive in the same turn of the event
 * loop go out in one SMTP transaction, and connections stay open for the next message to the same address.
 */
export class RemoteEngine {
  private readonly pool: ConnectionPool;
  private readonly tcpto: Tcpto;
  /** Whether a message file has 8-bit bytes, by file identity: scanned once, not once per host. */
  private readonly eightBits = new EightBitCache();
  /** This machine's addresses (E.4), refreshed every 10 s rather than per delivery. */
  private readonly ipme = cachedLocalAddresses();
  private readonly groups = new Map<string, Pending[]>();
  private flushing = false;

  constructor(private readonly opts: RemoteEngineOptions) {
    const perHost = opts.perHost ?? Math.max(1, opts.control().number('concurrencyremotehost').value);
    this.pool = new ConnectionPool(perHost, opts.idleMs ?? 5000);
    this.tcpto = new Tcpto(tcptoPath(opts.root));
  }

  /** One recipient; never throws. Grouped with its siblings when they arrive together. */
  deliver(job: RemoteJob): Promise<DeliveryResult> {
    const key = [
      job.sender,
      job.messagePath,
      asciiLower(splitAddress(job.recipient).domain),
      job.prefix ?? '',
      job.via ?? '',
    ].join('\0');
    return new Promise((resolve) => {
      const g = this.groups.get(key);
      if (g) g.push({ job, resolve });
      else this.groups.set(key, [{ job, resolve }]);
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Several recipients of one message in as few transactions as possible; one result per job, in order. */
  async deliverMany(jobs: readonly RemoteJob[]): Promise<DeliveryResult[]> {
    return Promise.all(jobs.map((j) => this.deliver(j)));
  }

  /** Closes idle connections (QUIT); call at shutdown. */
  close(): void {
    this.pool.close();
  }

  private flush(): void {
    this.flushing = false;
    const groups = [...this.groups.values()];
    this.groups.clear();
    const max = Math.max(1, this.opts.maxRecipients ?? 100);
    // One snapshot of control/ for every delivery that starts in this turn: each file is looked at once for all of
    // them, and a change is seen by the next turn's deliveries, as a snapshot per delivery would see it.
    let control: Control | undefined;
    try {
      control = this.opts.control();
    } catch {
      control = undefined; // each delivery tries again, and defers with the reason
    }
    for (const g of groups) {
      for (let i = 0; i < g.length; i += max) void this.run(g.slice(i, i + max), control);
    }
  }

  private async run(batch: readonly Pending[], snapshot: Control | undefined): Promise<void> {
    let results: DeliveryResult[];
    try {
      const { root: _root, control, perHost: _p, idleMs: _i, maxRecipients: _m, ...rest } = this.opts;
      const opts = { ...rest, ipme: rest.ipme ?? this.ipme(), control: snapshot ?? control() };
      results = await deliverBatch(
        batch.map((p) => p.job),
        opts,
        { pool: this.pool, tcpto: this.tcpto, eightBits: this.eightBits },
      );
    } catch (err) {
      const r: DeliveryResult = {
        result: 'deferral',
        report: `Unexpected remote delivery error: ${String(err)}. (#4.3.0)\n`,
      };
      results = batch.map(() => r);
    }
    batch.forEach((p, i) =>
      p.resolve(
        results[i] ?? { result: 'deferral', report: 'Unexpected remote delivery error: no result. (#4.3.0)\n' },
      ),
    );
  }
}
