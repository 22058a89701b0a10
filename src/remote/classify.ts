// What a remote reply means (control/replyrules, then REPLY_RULES): temporary or permanent, and a category for the log.
import { REPLY_RULES, type ReplyRule } from './replyrules.js';

export interface Classification {
  readonly result: 'temporary' | 'permanent';
  /** `reply-code` when no rule matched; else the rule's category. */
  readonly category: string;
  /** True when a rule changed the meaning of the reply code. */
  readonly reclassified: boolean;
}

const compiled = (rules: readonly ReplyRule[]): Array<{ rule: ReplyRule; re: RegExp }> =>
  rules.map((rule) => ({ rule, re: new RegExp(rule.pattern, 'i') }));

/** A classifier for a rule set (the built-in REPLY_RULES by default). */
export function makeClassifier(
  rules: readonly ReplyRule[] = REPLY_RULES,
): (code: number, lines: readonly string[]) => Classification {
  const table = compiled(rules);
  return (code, lines) => {
    const byCode: 'temporary' | 'permanent' = code >= 500 && code < 600 ? 'permanent' : 'temporary';
    const cls = String(code).charAt(0);
    const text = lines.join(' ');
    for (const { rule, re } of table) {
      if (!rule.classes.includes(cls) || !re.test(text)) continue;
      return { result: rule.result, category: rule.category, reclassified: rule.result !== byCode };
    }
    return { result: byCode, category: 'reply-code', reclassified: false };
  };
}

export const classifyReply = makeClassifier();

/** A line of control/replyrules that does not parse: the message says which line and why. */
export class ReplyRulesError extends Error {
  constructor(
    readonly line: number,
    why: string,
  ) {
    super(`control/replyrules line ${line}: ${why}`);
    this.name = 'ReplyRulesError';
  }
}

/**
 * Parses control/replyrules lines (`CLASSES:RESULT:CATEGORY:PATTERN`; the pattern may contain colons).
 * Throws ReplyRulesError for the first line that is not a rule.
 */
export function parseReplyRules(lines: readonly string[]): ReplyRule[] {
  return lines.map((text, i) => {
    const parts = text.split(':');
    const [classes, result, category] = parts;
    const pattern = parts.slice(3).join(':');
    if (parts.length < 4) throw new ReplyRulesError(i + 1, 'expected CLASSES:RESULT:CATEGORY:PATTERN');
    if (classes !== '4' && classes !== '5' && classes !== '45')
      throw new ReplyRulesError(i + 1, `classes must be 4, 5 or 45, not "${classes ?? ''}"`);
    if (result !== 'temporary' && result !== 'permanent')
      throw new ReplyRulesError(i + 1, `result must be temporary or permanent, not "${result ?? ''}"`);
    if (category === undefined || !/^[A-Za-z0-9._-]+$/.test(category))
      throw new ReplyRulesError(i + 1, 'category must be a word (letters, digits, . _ -)');
    if (pattern === '') throw new ReplyRulesError(i + 1, 'the pattern is empty');
    try {
      new RegExp(pattern, 'i');
    } catch (err) {
      throw new ReplyRulesError(i + 1, `bad pattern: ${(err as Error).message}`);
    }
    return { classes, result, category, pattern };
  });
}

let cached: { key: string; classify: ReturnType<typeof makeClassifier> } | undefined;

/** The classifier for control/replyrules' lines (null/empty = built-in rules only); compiled once per content. */
export function classifierFor(local: readonly string[] | null): ReturnType<typeof makeClassifier> {
  if (local === null || local.length === 0) return classifyReply;
  const key = local.join('\n');
  if (cached?.key !== key) cached = { key, classify: makeClassifier([...parseReplyRules(local), ...REPLY_RULES]) };
  return cached.classify;
}
