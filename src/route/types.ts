// The routing contract (docs/QMAIL.md A): recipient -> local (possibly rewritten) or remote. Pure.

/** The control data routing needs; built from a Control snapshot by `routeControlFrom(control)`. */
export interface RouteControl {
  readonly envnoathost: string;
  /** Lowercased entries of control/locals (or [me] when the file is missing). */
  readonly locals: ReadonlySet<string>;
  /** Lowercased entries of control/percenthack. */
  readonly percenthack: ReadonlySet<string>;
  /** control/virtualdomains keyed by lowercased pattern (last line wins). */
  readonly virtualdomains: ReadonlyMap<
    string,
    { readonly pattern: string; readonly value: string; readonly line: number }
  >;
  /**
   * Optional, for explanations only: where `locals` came from (control/locals, or control/me when it is
   * missing) and the 1-based line of each lowercased entry. Routing never depends on it.
   */
  readonly localsSource?: { readonly file: 'locals' | 'me'; readonly lines: ReadonlyMap<string, number> };
  /**
   * control/me as read when this was built from a fresh start (null: missing). qmail-send reads `me` once, at start
   * (control_init); after a SIGHUP a missing control/locals still means that `me`, not the file's new text.
   */
  readonly me?: string | null;
}

export type RouteDecision =
  | {
      readonly channel: 'local';
      /** The channel address: unchanged for locals, PREFIX-L@D for virtual domains. */
      readonly address: string;
      /** Human explanation for `quail explain` (which file and line decided, and why). */
      readonly why: readonly string[];
    }
  | { readonly channel: 'remote'; readonly address: string; readonly why: readonly string[] };
