// The SMTP side of the user directory: AUTH against its mailboxes, RCPT-time checks for the domains it manages.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { asciiLower, errText } from '../core/index.js';
import {
  authenticate,
  KeptDirectory,
  locateDirectory,
  mayUseSender,
  openDirectory,
  throttleLogin,
  type Directory,
  type PasswordVerifier,
} from '../directory/index.js';
import { Control, type ControlFileCache } from '../control/index.js';
import { OfficeFileRouter } from '../offices/index.js';
import {
  OWN_ADDRESS_ONLY,
  type Authenticator,
  type AuthResult,
  type RcptVerdict,
  type RecipientCheck,
  type SenderCheck,
  type SenderVerdict,
} from '../smtpd/index.js';

/**
 * Opens the directory read-only on first use (it may be created while quail runs: `quail domain add`), keeps
 * it open, and drops it after an error so the next session opens it again. Without a directory (no SQLite
 * file, no control/directory URL) AUTH answers 454 and every recipient passes to qmail's rules as before.
 */
/** Which check a lookup time belongs to. */
export type LookupOp = 'auth' | 'rcpt' | 'sender';

export class DirectoryLink implements Authenticator, RecipientCheck, SenderCheck {
  private readonly dir: KeptDirectory;
  /** The offices' router (run/offices.json) when control/office is set; null without; undefined: not looked yet. */
  private offices: OfficeFileRouter | null | undefined;

  /**
   * `onLookup`: each check's duration (the metrics' quail_directory_lookup_seconds). `controlFiles`: the process's
   * control cache, so that with no directory yet each RCPT finds control/directory missing with no failed open (an
   * exception per recipient, docs/PERFORMANCE.md ninth pass). `verify`: the password check (tests count its calls).
   */
  constructor(
    private readonly root: string,
    private readonly onLookup?: (op: LookupOp, seconds: number) => void,
    private readonly controlFiles?: ControlFileCache,
    private readonly verifier?: PasswordVerifier,
  ) {
    this.dir = new KeptDirectory(() => openDirectory({ root, readonly: true }));
  }

  private async timed<T>(op: LookupOp, f: () => Promise<T>): Promise<T> {
    if (!this.onLookup) return f();
    const t0 = performance.now();
    try {
      return await f();
    } finally {
      this.onLookup(op, (performance.now() - t0) / 1000);
    }
  }

  private async directory(): Promise<Directory | undefined> {
    if (!this.dir.opened) {
      const loc = locateDirectory(this.root, undefined, this.controlFiles?.snapshot() ?? new Control(this.root));
      if (loc.kind === 'sqlite' && !existsSync(loc.file)) return undefined;
    }
    return this.dir.get();
  }

  /** The name the AUTH throttle counts `user` under: its mailbox's, alias domains resolved (src/directory). */
  async throttleKey(user: string): Promise<string> {
    const directory = await this.directory();
    return directory === undefined ? user : throttleLogin(directory, user);
  }

  verify(user: string, password: string): Promise<AuthResult> {
    return this.timed('auth', () => this.verifyNow(user, password));
  }

  private async verifyNow(user: string, password: string): Promise<AuthResult> {
    try {
      const directory = await this.directory();
      if (!directory)
        return { ok: false, temporary: true, reason: 'no user directory exists (quail domain add makes one)' };
      // read-only here: the login time is not recorded by SMTP AUTH
      const m = await authenticate(this.root, user, password, {
        directory,
        service: 'smtp',
        recordLogin: false,
        ...(this.verifier ? { verify: this.verifier } : {}),
      });
      return m
        ? { ok: true, user: `${m.local}@${m.domain}`, relay: !m.flags.includes('no-relay') }
        : { ok: false, temporary: false, reason: 'unknown login, wrong password or no-smtp-auth' };
    } catch (err) {
      await this.dir.drop();
      return { ok: false, temporary: true, reason: `directory: ${errText(err)}` };
    }
  }

  /**
   * A recipient of a directory domain (or alias domain) is known when it is a mailbox (also `box-ext`, as
   * vdeliver matches the part before the first '-'), an alias, or has its own `domains/<domain>/.qmail-<local>`;
   * otherwise the domain's unknown-address policy decides: bounce-no-mailbox → unknown (550 5.1.1), anything
   * else (delete, forward, mailbox:LOCAL — a catch-all) → accept.
   */
  check(address: string, client?: { readonly ip: string }): Promise<RcptVerdict> {
    return this.timed('rcpt', async () => {
      const v = await this.checkNow(address);
      return v === 'accept' && client !== undefined && this.elsewhere(address, client.ip) ? 'not-here' : v;
    });
  }

  /**
   * Offices (control/office, src/offices): a client that is another office's server, for a mailbox that lives at a
   * third office (the two disagree about a move). Refused with 451 so the message stays in the sender's queue and
   * follows the mailbox at its next attempt, instead of waiting here under the one-hop rule.
   */
  private elsewhere(address: string, ip: string): boolean {
    if (this.offices === undefined) {
      let office: string | null = null;
      try {
        office = new Control(this.root).single('office').value;
      } catch {
        office = null;
      }
      this.offices = office === null || office === '' ? null : new OfficeFileRouter(this.root, office, new Set());
    }
    if (this.offices === null) return false;
    return this.offices.cameFrom({ origin: 'smtp', ip }) !== null && this.offices.place(address).kind === 'office';
  }

  private async checkNow(address: string): Promise<RcptVerdict> {
    const at = address.lastIndexOf('@');
    if (at <= 0) return 'accept';
    try {
      const directory = await this.directory();
      if (!directory) return 'accept';
      const local = asciiLower(address.slice(0, at));
      // one statement (the alias, the mailbox, the mailbox before the first '-'), as a delivery asks it
      const found = await directory.lookupAddress(asciiLower(address.slice(at + 1)), local);
      if (!found) return 'accept';
      if (found.alias || found.mailbox) return 'accept';
      if (!local.includes('/') && this.hasDotQmail(found.domain.name, local)) return 'accept';
      return found.domain.policy.kind === 'bounce-no-mailbox' ? 'unknown' : 'accept';
    } catch {
      await this.dir.drop();
      return 'temporary';
    }
  }

  /**
   * qmail-local's choice for an extension address: `.qmail-LOCAL`, else `.qmail-PREFIX-default` for each shorter
   * prefix ending before a '-' (a mailing list's `team-subscribe`, `team-return-...` reach `.qmail-team-default`).
   */
  private hasDotQmail(domain: string, local: string): boolean {
    const base = join(this.root, 'domains', domain);
    const name = local.replace(/\./g, ':');
    if (existsSync(join(base, `.qmail-${name}`))) return true;
    for (let i = name.lastIndexOf('-'); i > 0; i = name.lastIndexOf('-', i - 1))
      if (existsSync(join(base, `.qmail-${name.slice(0, i)}-default`))) return true;
    return false;
  }

  /** After AUTH: the senders the login may use (src/directory/senders.ts); without a directory its own address only. */
  mayUse(login: string, sender: string): Promise<SenderVerdict> {
    return this.timed('sender', () => this.mayUseNow(login, sender));
  }

  private async mayUseNow(login: string, sender: string): Promise<SenderVerdict> {
    try {
      const directory = await this.directory();
      if (!directory) return await OWN_ADDRESS_ONLY.mayUse(login, sender);
      return (await mayUseSender(directory, login, sender)) ? 'allow' : 'deny';
    } catch {
      await this.dir.drop();
      return 'temporary';
    }
  }

  async close(): Promise<void> {
    await this.dir.drop();
  }
}
