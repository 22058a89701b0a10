// The conformance runner's contract: one handler per scenario kind (FORMAT.md sections 3-8).

/** A scenario file as parsed JSON (FORMAT.md section 1); kind handlers read their own fields. */
export interface Scenario {
  readonly id: string;
  readonly kind: string;
  readonly title?: string;
  readonly placeholders?: { readonly ROOT?: string; readonly QMAIL?: string } & Readonly<Record<string, string>>;
  readonly passwd?: ReadonlyArray<{
    readonly name: string;
    readonly uid: number;
    readonly gid: number;
    readonly home: string;
  }>;
  readonly input: Readonly<Record<string, unknown>>;
  readonly outcome: Readonly<Record<string, unknown>>;
  readonly [key: string]: unknown;
}

export type ScenarioResult =
  | { readonly status: 'pass' }
  | { readonly status: 'fail'; readonly diff: string }
  | { readonly status: 'skip'; readonly reason: string };

export interface KindContext {
  /** A fresh empty temporary directory for this scenario (removed afterwards). */
  readonly workDir: string;
  /** True when running as root (owners and modes can be reproduced). */
  readonly isRoot: boolean;
}

export type KindHandler = (scenario: Scenario, ctx: KindContext) => Promise<ScenarioResult>;
