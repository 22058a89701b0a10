// The users contract (docs/QMAIL.md C): who delivers a local address, from users/cdb then passwd then alias.

export interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

/** Injected account database (the real one reads /etc/passwd; tests and conformance pass a table). */
export interface PasswdSource {
  byName(name: string): PasswdEntry | undefined;
}

/** What qmail-lspawn hands qmail-local (C.3.4, C.4.4). */
export interface Assignment {
  readonly user: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  readonly dash: string;
  readonly ext: string;
  /** How it was found, for `quail explain`. */
  readonly via: 'simple' | 'wildcard' | 'passwd' | 'alias';
  /** The cdb key that matched (simple/wildcard), for explanations. */
  readonly key?: string;
}
