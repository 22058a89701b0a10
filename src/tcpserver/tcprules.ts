// control/tcp.smtp in tcprules format: which clients may connect, and the environment they get (RELAYCLIENT...).

export interface TcpRule {
  /** The address part: '' (default), '1.2.3.4', '1.2.3.' (prefix), 'info@1.2.3.4', '[::1]'. */
  readonly key: string;
  readonly action: 'allow' | 'deny';
  /** Environment assignments; a value of null unsets the variable. */
  readonly env: ReadonlyMap<string, string | null>;
  readonly line: number;
}

export interface TcpRulesError {
  readonly line: number;
  readonly text: string;
  readonly reason: string;
}

export interface TcpRules {
  readonly rules: ReadonlyMap<string, TcpRule>;
  readonly errors: readonly TcpRulesError[];
}

/** The last text parsed by parseTcpRulesKept, and its rules. */
let kept: { readonly text: string; readonly rules: TcpRules } | undefined;

/**
 * parseTcpRules, kept for the same text: listeners read their rules file per connection (a change applies at the
 * next one, as tcpserver rereads its cdb), and a large file (6 MB: 0.4 s of CPU) was parsed again for each.
 */
export function parseTcpRulesKept(text: string): TcpRules {
  if (kept?.text !== text) kept = { text, rules: parseTcpRules(text) };
  return kept.rules;
}

/**
 * Parses tcprules(1) source: `ADDRESS:allow|deny[,VAR="VALUE"|,VAR=VALUE|,=VAR]...`; '#' lines and blank
 * lines ignored. A last-octet range `1.2.3.4-7` is expanded. The first rule for an address wins (tcprules
 * keeps the first record of a key). Lines that do not parse are reported, never guessed at.
 */
export function parseTcpRules(text: string): TcpRules {
  const rules = new Map<string, TcpRule>();
  const errors: TcpRulesError[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, idx) => {
    const line = idx + 1;
    const l = raw.replace(/[ \t\r]+$/, '');
    if (l === '' || l.startsWith('#')) return;
    const split = splitAddress(l);
    if (!split) {
      errors.push({ line, text: l, reason: 'no ":" after the address' });
      return;
    }
    const parsed = parseInstructions(split.instructions);
    if (typeof parsed === 'string') {
      errors.push({ line, text: l, reason: parsed });
      return;
    }
    for (const key of expandRange(split.address)) {
      if (!rules.has(key)) rules.set(key, { key, action: parsed.action, env: parsed.env, line });
    }
  });
  return { rules, errors };
}

function splitAddress(l: string): { address: string; instructions: string } | null {
  if (l.startsWith('[')) {
    const close = l.indexOf(']:');
    if (close < 0) return null;
    return { address: l.slice(0, close + 1), instructions: l.slice(close + 2) };
  }
  const colon = l.indexOf(':');
  if (colon < 0) return null;
  return { address: l.slice(0, colon), instructions: l.slice(colon + 1) };
}

function parseInstructions(s: string): { action: 'allow' | 'deny'; env: Map<string, string | null> } | string {
  const env = new Map<string, string | null>();
  let action: 'allow' | 'deny' | undefined;
  let i = 0;
  while (i < s.length) {
    if (s.startsWith('allow', i) && (i + 5 === s.length || s[i + 5] === ',')) {
      action ??= 'allow';
      i += 5;
    } else if (s.startsWith('deny', i) && (i + 4 === s.length || s[i + 4] === ',')) {
      action ??= 'deny';
      i += 4;
    } else if (s[i] === '=') {
      const end = s.indexOf(',', i);
      const name = s.slice(i + 1, end < 0 ? s.length : end);
      env.set(name, null);
      i = end < 0 ? s.length : end;
    } else {
      const eq = s.indexOf('=', i);
      if (eq < 0) return `unknown instruction "${s.slice(i)}"`;
      const name = s.slice(i, eq);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return `bad variable name "${name}"`;
      const q = s[eq + 1];
      if (q === '"' || q === "'") {
        const close = s.indexOf(q, eq + 2);
        if (close < 0) return `unterminated quote in ${name}`;
        env.set(name, s.slice(eq + 2, close));
        i = close + 1;
      } else {
        const end = s.indexOf(',', eq);
        env.set(name, s.slice(eq + 1, end < 0 ? s.length : end));
        i = end < 0 ? s.length : end;
      }
    }
    if (i < s.length) {
      if (s[i] !== ',') return `expected "," at "${s.slice(i)}"`;
      i++;
    }
  }
  if (!action) return 'no allow or deny instruction';
  return { action, env };
}

function expandRange(address: string): string[] {
  const m = /^(\d{1,3}\.\d{1,3}\.\d{1,3}\.)(\d{1,3})-(\d{1,3})$/.exec(address);
  if (!m) return [address];
  const lo = Number(m[2]);
  const hi = Number(m[3]);
  const out: string[] = [];
  for (let n = lo; n <= Math.min(hi, 255); n++) out.push(`${m[1] as string}${n}`);
  return out;
}

/**
 * tcpserver's lookup order: INFO@IP, IP, then shorter prefixes of IP ending in '.', then ''. IPv6 clients
 * match a bracketed exact rule `[::1]:...` or the default. No rule at all means allow with no environment.
 */
export function matchTcpRules(rules: TcpRules, ip: string, info?: string): TcpRule | undefined {
  const get = (k: string): TcpRule | undefined => rules.rules.get(k);
  if (info !== undefined) {
    const r = get(`${info}@${ip}`);
    if (r) return r;
  }
  if (ip.includes(':')) return get(`[${ip}]`) ?? get('');
  const exact = get(ip);
  if (exact) return exact;
  const parts = ip.split('.');
  for (let n = parts.length - 1; n >= 1; n--) {
    const r = get(parts.slice(0, n).join('.') + '.');
    if (r) return r;
  }
  return get('');
}
