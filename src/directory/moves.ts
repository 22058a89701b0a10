// Mailbox moves between offices (issue 16, migration 7): the switch and its record in one transaction, and the
// Maildir files the old office's server carries through the directory to the new one (src/offices/mover.ts).
import { randomUUID } from 'node:crypto';
import { homeForNew } from './offices.js';
import { DirectoryError, localPart } from './names.js';
import type { Row, SqlDriver } from './sql.js';
import type { MailboxMove, MoveFile, MoveFileKey } from './types.js';

const str = (v: unknown): string =>
  typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'bigint' ? String(v) : '';
const num = (v: unknown): number => Number(v ?? 0);

const toMove = (r: Row): MailboxMove => ({
  id: str(r['id']),
  domain: str(r['domain']),
  local: str(r['local']),
  from: str(r['from_office']),
  to: str(r['to_office']),
  started: new Date(num(r['started'])),
  finished: r['finished'] === null || r['finished'] === undefined ? null : new Date(num(r['finished'])),
  files: num(r['files']),
  bytes: num(r['bytes']),
  note: str(r['note']),
});

/**
 * Switches the mailbox's home office and records the move, in one transaction: from then on new mail goes to the
 * new office, and the old office's server carries the Maildir over. No record when the mailbox had no office (no
 * server is known to hold its Maildir). Refused while an earlier move of the mailbox is unfinished.
 */
export async function moveMailbox(
  db: SqlDriver,
  domain: string,
  local: string,
  office: string,
  now: number,
): Promise<{ from: string; to: string; move: MailboxMove | null }> {
  const d = domain.toLowerCase();
  const l = localPart(local);
  return db.transaction(async (tx) => {
    const to = await homeForNew(tx, office);
    const row = (await tx.all('SELECT office FROM mailboxes WHERE domain = ? AND local = ?', [d, l]))[0];
    if (!row) throw new DirectoryError(`no mailbox ${l}@${d} in the directory`);
    const from = str(row['office']);
    if (from === to) throw new DirectoryError(`${l}@${d} already lives at office ${to}`);
    const open = (
      await tx.all('SELECT * FROM mailbox_moves WHERE domain = ? AND local = ? AND finished IS NULL', [d, l])
    )[0];
    if (open)
      throw new DirectoryError(
        `${l}@${d} is being moved from office ${str(open['from_office'])} to ${str(open['to_office'])} (started ` +
          `${new Date(num(open['started'])).toISOString()}); wait until that move is finished (quail user move ` +
          `${l}@${d} --status), then move it again`,
      );
    await tx.run('UPDATE mailboxes SET office = ? WHERE domain = ? AND local = ?', [to, d, l]);
    if (from === '') return { from, to, move: null };
    const id = randomUUID();
    await tx.run(
      'INSERT INTO mailbox_moves (id, domain, local, from_office, to_office, started) VALUES (?, ?, ?, ?, ?, ?)',
      [id, d, l, from, to, now],
    );
    return {
      from,
      to,
      move: { id, domain: d, local: l, from, to, started: new Date(now), finished: null, files: 0, bytes: 0, note: '' },
    };
  });
}

/** The mailbox's moves, newest first. */
export async function mailboxMoves(db: SqlDriver, domain: string, local: string): Promise<MailboxMove[]> {
  return (
    await db.all('SELECT * FROM mailbox_moves WHERE domain = ? AND local = ? ORDER BY started DESC', [
      domain.toLowerCase(),
      local.toLowerCase(),
    ])
  ).map(toMove);
}

/** Moves from or to `office` that are unfinished or finished at `since` or later. */
export async function officeMoves(db: SqlDriver, office: string, since: number): Promise<MailboxMove[]> {
  return (
    await db.all(
      `SELECT * FROM mailbox_moves WHERE (from_office = ? OR to_office = ?) AND (finished IS NULL OR finished >= ?)
        ORDER BY started`,
      [office, office, since],
    )
  ).map(toMove);
}

export async function moveFileKeys(db: SqlDriver, move: string): Promise<MoveFileKey[]> {
  return (await db.all('SELECT folder, name, size, written FROM move_files WHERE move = ?', [move])).map((r) => ({
    folder: str(r['folder']),
    name: str(r['name']),
    size: num(r['size']),
    written: r['written'] !== null && r['written'] !== undefined,
  }));
}

/** Bytes carried but not yet written at the new office. */
export async function inFlightBytes(db: SqlDriver, move: string): Promise<number> {
  const r = await db.all('SELECT SUM(size) AS n FROM move_files WHERE move = ? AND written IS NULL', [move]);
  return num(r[0]?.['n']);
}

/** Adds one file to a move (nothing when it is there already: a repeat after a crash); true when added. */
export async function pushMoveFile(db: SqlDriver, move: string, f: MoveFile): Promise<boolean> {
  return db.transaction(async (tx) => {
    const n = await tx.run(
      `INSERT INTO move_files (move, folder, name, sub, info, size, data) VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT DO NOTHING`,
      [move, f.folder, f.name, f.sub, f.info, f.data.length, f.data.toString('base64')],
    );
    if (n > 0)
      await tx.run('UPDATE mailbox_moves SET files = files + 1, bytes = bytes + ?, finished = NULL WHERE id = ?', [
        f.data.length,
        move,
      ]);
    return n > 0;
  });
}

/** Up to `limit` files not yet written at the new office, with their contents. */
export async function unwrittenMoveFiles(db: SqlDriver, move: string, limit: number): Promise<MoveFile[]> {
  return (
    await db.all(
      'SELECT folder, name, sub, info, data FROM move_files WHERE move = ? AND written IS NULL ORDER BY folder, name LIMIT ?',
      [move, limit],
    )
  ).map((r) => ({
    folder: str(r['folder']),
    name: str(r['name']),
    sub: str(r['sub']) === 'cur' ? 'cur' : 'new',
    info: str(r['info']),
    data: Buffer.from(str(r['data']), 'base64'),
  }));
}

/** The new office has the file on disk (fsynced): its contents leave the directory. */
export async function markMoveFileWritten(
  db: SqlDriver,
  move: string,
  folder: string,
  name: string,
  now: number,
): Promise<void> {
  await db.run('UPDATE move_files SET written = ?, data = NULL WHERE move = ? AND folder = ? AND name = ?', [
    now,
    move,
    folder,
    name,
  ]);
}

/** Marks the move finished when every file it carried is written at the new office; true when it is (now) finished. */
export async function finishMove(db: SqlDriver, move: string, now: number, note = ''): Promise<boolean> {
  return db.transaction(async (tx) => {
    const left = num(
      (await tx.all('SELECT COUNT(*) AS n FROM move_files WHERE move = ? AND written IS NULL', [move]))[0]?.['n'],
    );
    if (left > 0 && note === '') return false;
    await tx.run('UPDATE mailbox_moves SET finished = COALESCE(finished, ?), note = ? WHERE id = ?', [now, note, move]);
    return true;
  });
}

/** Forgets the carried files' names of moves finished before `before` (the move records stay as history). */
export async function pruneMoveFiles(db: SqlDriver, before: number): Promise<number> {
  return db.run(
    'DELETE FROM move_files WHERE move IN (SELECT id FROM mailbox_moves WHERE finished IS NOT NULL AND finished < ?)',
    [before],
  );
}
