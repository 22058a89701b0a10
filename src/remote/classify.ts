// What a remote reply means (REPLY_RULES applied): temporary or permanent, and a category for the log.
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
export function makeClassifier(rules: readonly ReplyRule[] = REPLY_RULES): (code: number, lines: readonly string[]) => Classification {
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
