// The catalogue of every control file quail reads: name, syntax, default, reader, when a change applies.

export type ControlKind = 'single' | 'list' | 'map' | 'number' | 'cdb' | 'lines';

/** How a default is derived when the file is missing (docs/QMAIL.md 0.6 and G). */
export type ControlDefault =
  | { readonly from: 'none' }
  | { readonly from: 'literal'; readonly value: string }
  | { readonly from: 'me'; readonly fallback?: string }
  | { readonly from: 'number'; readonly value: number };

/** The shape of one entry; `ControlDef` is an entry of the catalogue, its name a `ControlName`. */
interface ControlEntry {
  readonly name: string;
  readonly kind: ControlKind;
  readonly default: ControlDefault;
  /** The component(s) that read it. */
  readonly readBy: string;
  /** When a change takes effect. */
  readonly applies: string;
  /** What it means, one or two sentences (shown by `quail showctl`). */
  readonly doc: string;
  /** Upper bound applied after parsing (e.g. conf-spawn for concurrency). */
  readonly max?: number;
  /**
   * A number qmail keeps in a C int (control_readint): the leading digits modulo 2^32, read as signed (`int32`:
   * 2147483648 is -2147483648) or as the unsigned int it is stored in (`uint32`); 4294967296 is 0 in both.
   */
  readonly wraps?: 'int32' | 'uint32';
}

const ON_EACH_SESSION = 'at the next SMTP session';
/** 35 MiB: above what the large mail services accept, so no real message is refused, but a limit all the same. */
const DEFAULT_DATABYTES = 35 * 1024 * 1024;
const ON_HUP = 'on SIGHUP (quail reload) or restart';
const ON_RESTART = 'at restart';
const ON_DELIVERY = 'at the next delivery attempt';

/** The entries, kept literal (`as const`) so that their names make the type `ControlName`. */
const DEFS = [
  {
    name: 'me',
    kind: 'single',
    default: { from: 'none' },
    readBy: 'all',
    applies: ON_RESTART,
    doc: 'Fully qualified name of this host; the default for many other files.',
  },
  {
    name: 'locals',
    kind: 'list',
    default: { from: 'me' },
    readBy: 'scheduler (route)',
    applies: ON_HUP,
    doc: 'Domains delivered locally, unchanged (no wildcards). Missing: only `me`.',
  },
  {
    name: 'virtualdomains',
    kind: 'map',
    default: { from: 'none' },
    readBy: 'scheduler (route)',
    applies: ON_HUP,
    doc: 'pattern:prefix lines; a matching recipient user@dom becomes prefix-user@dom, delivered locally. Empty prefix = exception.',
  },
  {
    name: 'percenthack',
    kind: 'list',
    default: { from: 'none' },
    readBy: 'scheduler (route)',
    applies: ON_RESTART,
    doc: 'Domains for which user%host@domain is rewritten to user@host.',
  },
  {
    name: 'envnoathost',
    kind: 'single',
    default: { from: 'me', fallback: 'envnoathost' },
    readBy: 'scheduler (route)',
    applies: ON_RESTART,
    doc: 'Domain appended to envelope recipients without @.',
  },
  {
    name: 'rcpthosts',
    kind: 'list',
    default: { from: 'none' },
    readBy: 'smtpd',
    applies: ON_EACH_SESSION,
    doc: 'Domains (and .suffixes) accepted as recipients from clients that may not relay. Missing: accept all.',
  },
  {
    name: 'morercpthosts',
    kind: 'list',
    default: { from: 'none' },
    readBy: 'quail newmrh',
    applies: 'after quail newmrh',
    doc: 'Extra rcpthosts entries, compiled by `quail newmrh` into morercpthosts.cdb.',
  },
  {
    name: 'morercpthosts.cdb',
    kind: 'cdb',
    default: { from: 'none' },
    readBy: 'smtpd',
    applies: ON_EACH_SESSION,
    doc: 'Compiled morercpthosts, consulted after rcpthosts.',
  },
  {
    name: 'rcpthostsmax',
    kind: 'number',
    default: { from: 'number', value: 50 },
    readBy: 'directory (quail domain add, directory check --repair)',
    applies: 'at the next domain change',
    doc: "Entries the directory keeps in rcpthosts; further domains go to morercpthosts + morercpthosts.cdb (vpopmail's limit: 50). rcpthosts is parsed whole at every SMTP session; morercpthosts.cdb is a hash lookup.",
  },
  {
    name: 'smtproutes',
    kind: 'map',
    default: { from: 'none' },
    readBy: 'remote',
    applies: ON_DELIVERY,
    doc: 'domain:relay[:port] lines choosing the next hop instead of MX; an empty relay means use MX.',
  },
  {
    name: 'defaulthost',
    kind: 'single',
    default: { from: 'me', fallback: 'defaulthost' },
    readBy: 'inject',
    applies: 'at the next injection',
    doc: 'Host added to header addresses without @ by quail inject.',
  },
  {
    name: 'defaultdomain',
    kind: 'single',
    default: { from: 'me', fallback: 'defaultdomain' },
    readBy: 'inject; smtpd (AUTH), pop3d (logins)',
    applies: 'at the next injection, SMTP session or POP3 connection',
    doc: "Domain added to header hosts without a dot by quail inject. Also vpopmail's default domain: an SMTP AUTH or POP3 login without @domain (nor user%domain) is user@defaultdomain — for logins only when the file exists (the `me` default is not used: without the file a login must name its domain).",
  },
  {
    name: 'plusdomain',
    kind: 'single',
    default: { from: 'me', fallback: 'plusdomain' },
    readBy: 'inject',
    applies: 'at the next injection',
    doc: 'Domain replacing a trailing + of a host by quail inject.',
  },
  {
    name: 'idhost',
    kind: 'single',
    default: { from: 'me', fallback: 'idhost' },
    readBy: 'inject',
    applies: 'at the next injection',
    doc: 'Host used in Message-IDs made by quail inject.',
  },
  {
    name: 'bouncefrom',
    kind: 'single',
    default: { from: 'literal', value: 'MAILER-DAEMON' },
    readBy: 'scheduler (bounce)',
    applies: ON_RESTART,
    doc: 'Local part of the From: address of bounces.',
  },
  {
    name: 'bouncehost',
    kind: 'single',
    default: { from: 'me', fallback: 'bouncehost' },
    readBy: 'scheduler (bounce)',
    applies: ON_RESTART,
    doc: 'Host of the From: address of bounces, and the host named in their text.',
  },
  {
    name: 'doublebounceto',
    kind: 'single',
    default: { from: 'literal', value: 'postmaster' },
    readBy: 'scheduler (bounce)',
    applies: ON_RESTART,
    doc: 'Local part that receives double bounces.',
  },
  {
    name: 'doublebouncehost',
    kind: 'single',
    default: { from: 'me', fallback: 'doublebouncehost' },
    readBy: 'scheduler (bounce)',
    applies: ON_RESTART,
    doc: 'Host that receives double bounces.',
  },
  {
    name: 'concurrencylocal',
    kind: 'number',
    default: { from: 'number', value: 10 },
    readBy: 'scheduler',
    applies: ON_RESTART,
    max: 120,
    wraps: 'uint32',
    doc: 'Maximum simultaneous local deliveries (at most 120); 0 starts none: local mail waits in the queue until a restart with a higher value, as in qmail-send.',
  },
  {
    name: 'concurrencyremote',
    kind: 'number',
    default: { from: 'number', value: 20 },
    readBy: 'scheduler',
    applies: ON_RESTART,
    max: 120,
    wraps: 'uint32',
    doc: 'Maximum simultaneous remote deliveries (at most 120); 0 starts none: remote mail waits in the queue until a restart with a higher value, as in qmail-send.',
  },
  {
    name: 'queuelifetime',
    kind: 'number',
    default: { from: 'number', value: 604800 },
    readBy: 'scheduler',
    applies: ON_RESTART,
    wraps: 'int32',
    doc: 'Seconds a message may stay in the queue before temporary failures become permanent.',
  },
  {
    name: 'databytes',
    kind: 'number',
    default: { from: 'number', value: DEFAULT_DATABYTES },
    readBy: 'smtpd',
    applies: ON_EACH_SESSION,
    doc: 'Maximum message size accepted by SMTP, in bytes (larger messages get 552 5.3.4, at MAIL when SIZE= announces it, else after DATA). Missing: 36700160 (35 MiB; qmail had no limit). 0 written in the file = no limit, as in qmail. Env DATABYTES (the listener option databytes= or a tcp.smtp rule) overrides.',
  },
  {
    name: 'timeoutsmtpd',
    kind: 'number',
    default: { from: 'number', value: 1200 },
    readBy: 'smtpd',
    applies: ON_EACH_SESSION,
    doc: 'Seconds an SMTP client may stay silent before the session is ended with 451 (0 counts as 1, as in qmail-smtpd).',
  },
  {
    name: 'timeoutremote',
    kind: 'number',
    default: { from: 'number', value: 1200 },
    readBy: 'remote',
    applies: ON_DELIVERY,
    doc: 'Seconds to wait for each read or write of a remote SMTP server.',
  },
  {
    name: 'timeoutconnect',
    kind: 'number',
    default: { from: 'number', value: 60 },
    readBy: 'remote',
    applies: ON_DELIVERY,
    doc: 'Seconds to wait for a remote SMTP connection to be established; also the longest a remote delivery waits for a connection to an address whose concurrencyremotehost connections are all busy (then it is deferred, #4.4.5, and retried on schedule).',
  },
  {
    name: 'smtpgreeting',
    kind: 'single',
    default: { from: 'me' },
    readBy: 'smtpd',
    applies: ON_EACH_SESSION,
    doc: 'Text after 220 in the SMTP greeting (and in HELO/EHLO/QUIT replies).',
  },
  {
    name: 'dnsservers',
    kind: 'list',
    default: { from: 'none' },
    readBy: 'remote, smtpd',
    applies: `${ON_DELIVERY}; ${ON_EACH_SESSION}`,
    doc: "DNS servers for MX/A/AAAA lookups, inbound SPF/DKIM/DMARC and a listener's DNS blocklists (rbl=), one per line: IP, IP:PORT or [IPv6]:PORT. Missing: the system resolver (/etc/resolv.conf).",
  },
  {
    name: 'tlsdestinations',
    kind: 'map',
    default: { from: 'none' },
    readBy: 'remote',
    applies: ON_DELIVERY,
    doc: 'domain:policy lines (domain, .suffix or empty pattern as in smtproutes). Policy `verify` = STARTTLS required and the certificate verified against the system CAs; `/path/ca.pem` = required, verified against that CA file; `none` = never STARTTLS. Missing: STARTTLS whenever offered, certificate not checked.',
  },
  {
    name: 'outgoingip',
    kind: 'single',
    default: { from: 'none' },
    readBy: 'remote',
    applies: ON_DELIVERY,
    doc: 'Local IP address outgoing SMTP connections are made from. Missing: chosen by the kernel.',
  },
  {
    name: 'smtputf8',
    kind: 'single',
    default: { from: 'literal', value: 'strict' },
    readBy: 'remote',
    applies: ON_DELIVERY,
    doc: '`strict`: an address with a byte of 0x80 and above goes only to a server that offers SMTPUTF8, else it fails (#5.6.7, RFC 6531; default); `qmail`: it is sent as it is, quoted as qmail-remote quotes it.',
  },
  {
    name: 'replyrules',
    kind: 'list',
    default: { from: 'none' },
    readBy: 'remote',
    applies: ON_DELIVERY,
    doc: 'Local rules that give a remote reply another meaning than its code, tried before the built-in ones: `CLASSES:RESULT:CATEGORY:PATTERN` per line, CLASSES `4`, `5` or `45`, RESULT `temporary` or `permanent`, CATEGORY a word for the log, PATTERN a case-insensitive regular expression matched against the reply text (lines joined by a space). A line that does not parse defers remote deliveries (#4.3.0) until it is fixed.',
  },
  {
    name: 'heldinterval',
    kind: 'number',
    default: { from: 'number', value: 120 },
    readBy: 'held (quail start)',
    applies: ON_RESTART,
    doc: 'Seconds between pushes of each held domain with mail waiting to its RELAYHOST (serialmail from cron every 2 minutes); ETRN, quail held flush and new mail for a domain reached within the interval push sooner.',
  },
  {
    name: 'concurrencyremotehost',
    kind: 'number',
    default: { from: 'number', value: 10 },
    readBy: 'remote',
    applies: ON_RESTART,
    max: 120,
    doc: 'Most SMTP connections open at once to one remote address (the per-destination limit under concurrencyremote). A delivery that finds them all busy waits at most timeoutconnect, holding its concurrencyremote slot, then is deferred (#4.4.5), so a host that never answers cannot hold every slot.',
  },
  {
    name: 'helohost',
    kind: 'single',
    default: { from: 'me' },
    readBy: 'remote',
    applies: ON_DELIVERY,
    doc: 'Name quail gives in HELO/EHLO to remote servers.',
  },
  {
    name: 'localiphost',
    kind: 'single',
    default: { from: 'me' },
    readBy: 'smtpd',
    applies: ON_EACH_SESSION,
    doc: 'Name that replaces [ip] literals of this host in SMTP addresses.',
  },
  {
    name: 'badmailfrom',
    kind: 'list',
    default: { from: 'none' },
    readBy: 'smtpd',
    applies: ON_EACH_SESSION,
    doc: 'Envelope senders (or @domains) whose recipients are refused with 553.',
  },
  // quail's own files (not in qmail 1.03; each says why it exists).
  {
    name: 'defaultdelivery',
    kind: 'lines',
    default: { from: 'literal', value: './Maildir/\n' },
    readBy: 'scheduler (local)',
    applies: ON_RESTART,
    doc: "Delivery instructions used when a user has no .qmail (qmail-start's argument; the netqmail patch file of the same name).",
  },
  {
    name: 'bounceformat',
    kind: 'single',
    default: { from: 'literal', value: 'dsn' },
    readBy: 'scheduler (bounce)',
    applies: ON_RESTART,
    doc: "`dsn`: RFC 3464 multipart/report bounces with qmail's text (default); `qsbmf`: qmail's plain bounce, byte for byte.",
  },
  {
    name: 'quailuser',
    kind: 'single',
    default: { from: 'none' },
    readBy: 'users (lookup), init',
    applies: ON_RESTART,
    doc: 'Unix account that virtual domains made by `quail init` are delivered as; stands in for the `alias` account when the system has none.',
  },
  {
    name: 'queues',
    kind: 'lines',
    default: { from: 'none' },
    readBy: 'scheduler, smtpd, inject (queues)',
    applies: ON_HUP,
    doc: 'Named queues, one a line: NAME key=value... (lifetime=, retry=qmail|S1,S2.., concurrencylocal=, concurrencyremote=, bounces=qsbmf|dsn|none, bouncefrom=, bouncehost=, doublebounceto=, doublebouncehost=, outgoingip=, helohost=, route=SMTPROUTES-LINE repeated). Missing options are the ordinary control files; the queue `default` is those files alone (docs/QUEUES.md).',
  },
  {
    name: 'queuerules',
    kind: 'lines',
    default: { from: 'none' },
    readBy: 'scheduler, smtpd, inject (queues)',
    applies: 'at the next SMTP session, injection or bounce; the scheduler on SIGHUP',
    doc: "Which queue a message joins, first match wins: `listener ADDR:PORT Q`, `auth DOMAIN Q` (the AUTH login's domain), `sender DOMAIN Q` (forgeable), `rcpt DOMAIN Q` (any recipient), `bounce Q` (bounces quail makes). DOMAIN: example.com, .example.com (subdomains) or *. No match: `default`.",
  },
  {
    name: 'listeners',
    kind: 'lines',
    default: {
      from: 'literal',
      value: '127.0.0.1:2525 smtp\n127.0.0.1:2587 submission\n127.0.0.1:2110 pop3\n127.0.0.1:2995 pop3 tls=implicit\n',
    },
    readBy: 'start',
    applies: ON_RESTART,
    doc: 'One listener per line: ADDRESS:PORT KIND [policy...]; KIND is smtp, submission or pop3 (docs/LISTENERS.md).',
  },
  {
    name: 'servercert.pem',
    kind: 'lines',
    default: { from: 'none' },
    readBy: 'smtpd',
    applies: ON_EACH_SESSION,
    doc: 'PEM private key followed by its certificate, for STARTTLS; `quail init` makes a self-signed one (mode 0600). Without it no STARTTLS.',
  },
  {
    name: 'directory',
    kind: 'single',
    default: { from: 'none' },
    readBy: 'directory',
    applies: ON_RESTART,
    doc: 'URL of the virtual-user directory (postgres://...); missing: the embedded SQLite file directory.sqlite in the mail root.',
  },
  {
    name: 'tcp.smtp',
    kind: 'lines',
    default: { from: 'none' },
    readBy: 'smtpd',
    applies: ON_EACH_SESSION,
    doc: 'Access rules in tcprules format (127.:allow,RELAYCLIENT=""); without it nobody may relay without AUTH. Per-client opt-outs of quail\'s strict defaults: QUAIL_LOOSE="1" (qmail\'s envelope parsing: no <> needed, unknown MAIL parameters ignored, a second MAIL replaces the first), QUAIL_BARECR="keep" (a lone CR in DATA kept), QUAIL_CLEARAUTH="1" (AUTH without TLS); DATABYTES overrides databytes. QMAILQUEUE="/path/prog" hands each message to that qmail-queue-compatible program instead of the queue (message on fd 0, envelope on fd 1; it queues with `quail queue-inject`; exit 0 = 250, 11-40 = 554, others 451), killed after QUAIL_FILTERTIMEOUT seconds (default 300). For the built-in program `quail filter`: QUAIL_CLAMD (socket path or host:port), QUAIL_VIRUSACTION (reject|quarantine), QUAIL_SPAMD (host:port), QUAIL_SPAMACTION (reject|tag|quarantine).',
  },
  {
    name: 'tcp.pop3',
    kind: 'lines',
    default: { from: 'none' },
    readBy: 'pop3d',
    applies: 'at the next POP3 connection',
    doc: 'Access rules for POP3 clients in tcprules format, as tcp.smtp: `deny` refuses the connection, QUAIL_CLEARAUTH="1" allows USER/PASS and AUTH PLAIN before STLS for that client (default: only after TLS, loopback included). Missing: every client allowed, logins only over TLS.',
  },
  // mailing lists (src/lists)
  {
    name: 'listurl',
    kind: 'single',
    default: { from: 'none' },
    readBy: 'lists',
    applies: 'at the next list post',
    doc: "Base URL of the web listener (e.g. https://mail.example.com) for each post's one-click List-Unsubscribe link (RFC 8058: POST BASE/lists/unsubscribe/DOMAIN/LIST/TOKEN). Missing: List-Unsubscribe holds only the mailto address.",
  },
  {
    name: 'listbouncedays',
    kind: 'number',
    default: { from: 'number', value: 10 },
    readBy: 'lists',
    applies: 'at the next bounce a list receives',
    doc: "Mailing lists, as ezmlm: a subscriber whose address has bounced for this many days is sent a probe; when the probe bounces too the address is removed and the list's owners are told. A probe that has not bounced after as many days again clears the count. 0: probe at the first bounce.",
  },
  // offices (issue 16): one domain in several offices sharing a PostgreSQL directory
  {
    name: 'office',
    kind: 'single',
    default: { from: 'none' },
    readBy: 'offices (quail start: scheduler routing, directory sync)',
    applies: ON_RESTART,
    doc: "This server's office (a name from `quail office list`). Set: mailboxes of other offices go to their office's SMTP server in one hop (the scheduler's office channel), and qmail's files follow the shared directory by themselves. Missing: every mailbox is delivered here, as on a single server.",
  },
  {
    name: 'officerefresh',
    kind: 'number',
    default: { from: 'number', value: 60 },
    readBy: 'offices (quail start)',
    applies: ON_RESTART,
    doc: 'Seconds between the periodic checks of the shared directory (mailbox→office table, qmail files) that back up PostgreSQL LISTEN/NOTIFY; a notification refreshes at once.',
  },
  {
    name: 'localworkers',
    kind: 'number',
    default: { from: 'number', value: 0 },
    readBy: 'qmail-lspawn and the send process (quail start as root)',
    applies: ON_HUP,
    max: 64,
    doc: 'Delivery worker processes per mailbox uid (at most 64): local deliveries of one uid — every mailbox of a virtual-domain server — go to the worker with the fewest pending jobs, a new one started while all are busy. 0 or missing: one per two CPUs (at least 1, at most 16). Idle workers stop after 60 s. When it comes to 1, the send process delivers the users/assign mailboxes of its own account (control/quailuser) itself, with no worker.',
  },
  {
    name: 'smtpdprocesses',
    kind: 'number',
    default: { from: 'number', value: 0 },
    readBy: 'quail start as root (the SMTP processes)',
    applies: ON_RESTART,
    max: 64,
    doc: "SMTP processes serving the smtp and submission listeners at once (at most 64): each accepts on the ports itself and asks root, which counts maxconn=, maxperip= and stress mode across them, before it serves a connection (on a listener named by host name root accepts and hands each connection to the one with the fewest sessions); AUTH failures are counted in root's one table (with POP3's, ODMR's and the web admin's: src/throttle/README.md). 0 or missing: one per two CPUs (at least 1, at most 16), leaving the other CPUs to the queue and the deliveries. Without root (no privilege separation) one process serves everything.",
  },
] as const satisfies readonly ControlEntry[];

/** The name of a control file quail reads: a misspelt or uncatalogued name does not compile. */
export type ControlName = (typeof DEFS)[number]['name'];

export type ControlDef = ControlEntry & { readonly name: ControlName };

export const CATALOGUE: readonly ControlDef[] = DEFS;

const BY_NAME = new Map<string, ControlDef>(CATALOGUE.map((d) => [d.name, d]));

export function controlDef(name: string): ControlDef | undefined {
  return BY_NAME.get(name);
}
