// AUTHORIZATION state verbs: CAPA, USER, PASS, AUTH (SASL PLAIN), STLS, QUIT (RFC 1939, 2449, 2595, 5034).
import type { Command } from '../parse.js';
import { decodePlain, passwordText } from '../parse.js';
import type { Session } from '../session.js';
import { capa } from './capa.js';
import { AUTH_FAILED, login } from './login.js';

export type Handler = (s: Session, cmd: Command) => Promise<void>;

const NEED_TLS = '-ERR plaintext logins need an encrypted connection: use STLS first';

const user: Handler = async (s, cmd) => {
  if (!s.plaintextAllowed()) return void (await s.reply(NEED_TLS));
  if (cmd.rest === '') return void (await s.reply('-ERR USER needs a mailbox name'));
  s.user = cmd.rest;
  await s.reply('+OK send PASS');
};

const pass: Handler = async (s, cmd) => {
  const name = s.user;
  s.user = undefined;
  if (name === undefined) return void (await s.reply('-ERR send USER first'));
  if (!s.plaintextAllowed()) return void (await s.reply(NEED_TLS));
  await login(s, name, passwordText(cmd.rest), 'pass');
};

/** RFC 5034: AUTH PLAIN [initial-response]; a bare AUTH lists the mechanisms (as RFC 1734 servers did). */
const auth: Handler = async (s, cmd) => {
  const [mech, initial] = cmd.args;
  if (mech === undefined) {
    return void (await s.multiline('+OK SASL mechanisms follow', s.plaintextAllowed() ? ['PLAIN'] : []));
  }
  if (mech.toUpperCase() !== 'PLAIN') return void (await s.reply('-ERR unsupported SASL mechanism'));
  if (!s.plaintextAllowed()) return void (await s.reply(NEED_TLS));
  let response = initial;
  if (response === undefined) {
    await s.reply('+ ');
    const line = await s.readLine();
    if (line === undefined) return;
    if (line === '*') return void (await s.reply('-ERR authentication cancelled'));
    response = line;
  }
  const creds = decodePlain(response);
  if (!creds) return void (await s.reply('-ERR malformed SASL PLAIN response'));
  // RFC 4616 section 2: authorization as another identity is not offered, so authzid must be empty or the same.
  if (creds.authzid !== '' && creds.authzid !== creds.authcid) return void (await s.reply(AUTH_FAILED));
  await login(s, creds.authcid, creds.password, 'plain');
};

const stls: Handler = async (s) => {
  if (!s.tlsOffered()) return void (await s.reply('-ERR STLS is not available'));
  await s.reply('+OK begin TLS negotiation');
  if (!(await s.startTls())) s.end = 'tls-failed';
  s.user = undefined; // RFC 2595 section 4: forget what was said before the handshake
};

const quit: Handler = async (s) => {
  await s.reply('+OK quail POP3 server signing off');
  s.end = 'quit';
};

const capaHandler: Handler = async (s) => {
  await s.multiline('+OK capability list follows', capa(s));
};

export const AUTHORIZATION: Readonly<Record<string, Handler>> = {
  CAPA: capaHandler,
  USER: user,
  PASS: pass,
  AUTH: auth,
  STLS: stls,
  QUIT: quit,
};
