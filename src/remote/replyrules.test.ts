// Reply classification against real reply strings (golden table): what a remote reply means.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifierFor, classifyReply, parseReplyRules, ReplyRulesError } from './index.js';

/** [reply as received (lines), expected result, expected category]. */
const GOLDEN: Array<[string[], 'temporary' | 'permanent', string]> = [
  // block lists: 5xx, but delisting makes a retry succeed
  [
    [
      '554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.1',
    ],
    'temporary',
    'blocklist',
  ],
  [
    [
      "550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150).",
    ],
    'temporary',
    'blocklist',
  ],
  [
    [
      "553 5.7.1 [BL21] Connections will not be accepted from 192.0.2.1, because the ip is in Spamhaus's list; see http://postmaster.yahoo.com/550-bl23.html",
    ],
    'temporary',
    'blocklist',
  ],
  [
    ["554 Your access to this mail system has been rejected due to the sending MTA's poor reputation."],
    'temporary',
    'rate',
  ],
  [
    [
      '550-5.7.1 [192.0.2.1] Our system has detected an unusual rate of',
      '550-5.7.1 unsolicited mail originating from your IP address.',
      '550 5.7.1 To protect our users from spam, mail sent from your IP address has been blocked.',
    ],
    'temporary',
    'rate',
  ],
  // over quota
  [
    [
      '552-5.2.2 The email account that you tried to reach is over quota. Please direct',
      '552 5.2.2 the recipient to https://support.google.com/mail/?p=OverQuotaPerm',
    ],
    'temporary',
    'mailbox-full',
  ],
  [['552 5.2.2 Mailbox full'], 'temporary', 'mailbox-full'],
  // 4xx that will never succeed
  [
    ['450 4.1.1 <nobody@example.org>: Recipient address rejected: User unknown in virtual mailbox table'],
    'permanent',
    'unknown-user',
  ],
  [['451 4.1.1 Mailbox does not exist'], 'permanent', 'unknown-user'],
  // kept as their code says, with a name
  [
    [
      '450 4.2.0 <u@example.org>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.org.html',
    ],
    'temporary',
    'greylist',
  ],
  [['452 4.5.3 Too many recipients'], 'temporary', 'too-many-recipients'],
  // no rule: the code decides
  [
    ['550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in local recipient table'],
    'permanent',
    'reply-code',
  ],
  [['550 sink: no such user here'], 'permanent', 'reply-code'],
  [['451 sink: mailbox busy, try later'], 'temporary', 'reply-code'],
  [['421 4.3.2 Service not available'], 'temporary', 'reply-code'],
  [['554 5.7.1 Message rejected as spam by content filter'], 'permanent', 'reply-code'],
];

void test('reply rules: golden table of real replies', () => {
  for (const [lines, result, category] of GOLDEN) {
    const code = Number(lines[0]?.slice(0, 3));
    const c = classifyReply(code, lines);
    assert.deepEqual({ result: c.result, category: c.category }, { result, category }, lines.join(' | '));
    assert.equal(c.reclassified, result !== (code >= 500 ? 'permanent' : 'temporary'));
  }
});

void test('control/replyrules: local rules come first; bad lines are named', () => {
  const local = [
    '5:temporary:local-greylist:\\bsink: no such user here\\b',
    '4:permanent:gone:mailbox busy, try later',
  ];
  const c = classifierFor(local);
  assert.deepEqual(c(550, ['550 sink: no such user here']), {
    result: 'temporary',
    category: 'local-greylist',
    reclassified: true,
  });
  assert.deepEqual(c(451, ['451 sink: mailbox busy, try later']), {
    result: 'permanent',
    category: 'gone',
    reclassified: true,
  });
  // the built-in rules still apply after the local ones
  assert.equal(c(554, ['554 5.7.1 blocked using zen.spamhaus.org']).category, 'blocklist');
  assert.equal(classifierFor(null), classifyReply);
  // a pattern may contain colons
  assert.equal(parseReplyRules(['5:permanent:x:a:b'])[0]?.pattern, 'a:b');
  const bad: Array<[string, RegExp]> = [
    ['5:temporary:x', /line 1: expected CLASSES:RESULT:CATEGORY:PATTERN/],
    ['3:temporary:x:y', /line 1: classes must be 4, 5 or 45/],
    ['5:maybe:x:y', /line 1: result must be temporary or permanent/],
    ['5:temporary:two words:y', /line 1: category must be a word/],
    ['5:temporary:x:', /line 1: the pattern is empty/],
    ['5:temporary:x:(unclosed', /line 1: bad pattern/],
  ];
  for (const [line, re] of bad)
    assert.throws(
      () => parseReplyRules([line]),
      (e: unknown) => e instanceof ReplyRulesError && re.test(e.message),
      line,
    );
  assert.throws(() => parseReplyRules(['5:temporary:x:y', 'nonsense']), /line 2/);
});
