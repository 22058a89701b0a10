// The reply-classification rules (data, not code): remote replies whose meaning differs from their code class.
//
// Each rule: which reply classes it applies to (`4`, `5`), a case-insensitive pattern tried against the whole
// reply text (lines joined with a space), the result it stands for and a category for the log. First match
// wins; no match keeps RFC 5321's meaning (4xx temporary, 5xx permanent). A rule is added with a real reply
// string in replyrules.test.ts that proves it; nothing in the code names a provider.

export interface ReplyRule {
  /** The first digit(s) of the reply codes this rule may reclassify. */
  readonly classes: '4' | '5' | '45';
  readonly pattern: string;
  readonly result: 'temporary' | 'permanent';
  readonly category: string;
}

export const REPLY_RULES: readonly ReplyRule[] = [
  // Our sending IP is on a DNS block list or has a bad reputation: retrying after delisting succeeds.
  {
    classes: '5',
    pattern: String.raw`\b(spamhaus|spamcop|barracuda|sorbs|uceprotect|rbl|dnsbl)\b`,
    result: 'temporary',
    category: 'blocklist',
  },
  {
    classes: '5',
    pattern: String.raw`\b(block ?list|black ?list|blocked using|listed (at|in|on|by))\b`,
    result: 'temporary',
    category: 'blocklist',
  },
  { classes: '5', pattern: String.raw`\bS3(140|150)\b`, result: 'temporary', category: 'blocklist' },
  {
    classes: '5',
    pattern: String.raw`\b(unusual rate|poor reputation|reputation of (the )?sending|rate limit(ed)?|too many (connections|messages))\b`,
    result: 'temporary',
    category: 'rate',
  },
  // Mailbox over quota: RFC 3463 X.2.2 is a persistent transient condition; the owner may make room.
  {
    classes: '5',
    pattern: String.raw`\b5\.2\.2\b|\b(over ?quota|quota exceeded|mailbox (is )?full)\b`,
    result: 'temporary',
    category: 'mailbox-full',
  },
  // Temporary (4xx) replies that name a condition retrying cannot change.
  {
    classes: '4',
    pattern: String.raw`\b(user unknown|unknown user|no such (user|mailbox)|mailbox (does not|doesn't) exist|account (has been )?(disabled|deleted))\b`,
    result: 'permanent',
    category: 'unknown-user',
  },
  {
    classes: '4',
    pattern: String.raw`\b4\.1\.[0-9]+ .*\b(does not exist|not found)\b`,
    result: 'permanent',
    category: 'unknown-user',
  },
  // Kept temporary, named for the log.
  {
    classes: '4',
    pattern: String.raw`\b(greylist(ed|ing)?|graylist(ed|ing)?|try again later)\b`,
    result: 'temporary',
    category: 'greylist',
  },
  {
    classes: '4',
    pattern: String.raw`\b(too many recipients|4\.5\.3)\b`,
    result: 'temporary',
    category: 'too-many-recipients',
  },
];
