// The login step shared by PASS and AUTH PLAIN: throttle, authenticate, lock and open the mailbox, log.
import { setTimeout as sleep } from 'node:timers/promises';
import { countedAs } from '../../throttle/index.js';
import { normaliseLogin } from '../parse.js';
import type { Session } from '../session.js';

/** One text for every refusal: the client never learns whether the mailbox or the password was wrong. */
export const AUTH_FAILED = '-ERR [AUTH] authentication failed';

export async function login(s: Session, rawName: string, password: string, via: 'pass' | 'plain'): Promise<void> {
  const { config } = s;
  const client = s.client;
  const name = normaliseLogin(rawName, s.defaultDomain);
  // counted under the mailbox's own name (alias domains resolved by the authenticator): joe@alias.example guesses
  // at joe@example.com's password and shares its count
  const typed = name ?? rawName;
  const key = await countedAs(config.authenticator.throttleKey?.bind(config.authenticator), typed);
  const wait = await config.throttle.attempt(client.ip, key);
  if (wait > 0) await sleep(wait);

  let account;
  try {
    account = name === null ? null : await config.authenticator.authenticate(name, password, client);
  } catch (err) {
    config.throttle.ended(client.ip, key);
    config.log('pop3.error', { login: typed, ip: client.ip, error: `authenticator: ${String(err)}` });
    await s.reply('-ERR [SYS/TEMP] authentication is unavailable, try again later');
    return;
  }
  if (!account) {
    config.throttle.failed(client.ip, key);
    config.log('pop3.refused', { login: typed, ip: client.ip, tls: client.tls, via, reason: 'credentials' });
    await s.reply(AUTH_FAILED);
    if (++s.authFailures >= config.maxAuthFailures) s.end = 'auth-failures';
    return;
  }
  config.throttle.succeeded(key, client.ip);

  const opened = await config.store
    .open(account)
    .catch((err: unknown) => ({ kind: 'temporary' as const, reason: String(err) }));
  if (opened.kind === 'in-use') {
    config.log('pop3.refused', { login: account.login, ip: client.ip, tls: client.tls, via, reason: 'in-use' });
    await s.reply('-ERR [IN-USE] mailbox is in use by another session');
    return;
  }
  if (opened.kind === 'temporary') {
    config.log('pop3.error', { login: account.login, ip: client.ip, error: opened.reason });
    await s.reply('-ERR [SYS/TEMP] mailbox is unavailable, try again later');
    return;
  }
  s.account = account;
  s.mailbox = opened.mailbox;
  s.state = 'transaction';
  const list = opened.mailbox.list();
  const octets = list.reduce((sum, m) => sum + m.size, 0);
  config.log('pop3.login', {
    login: account.login,
    ip: client.ip,
    tls: client.tls,
    via,
    messages: list.length,
    octets,
  });
  if (config.authenticator.recordLogin) {
    config.authenticator.recordLogin(account.login, client, config.clock()).catch((err: unknown) => {
      config.log('pop3.warning', { login: account.login, ip: client.ip, error: `recordLogin: ${String(err)}` });
    });
  }
  await s.reply(`+OK ${list.length} messages (${octets} octets)`);
}
