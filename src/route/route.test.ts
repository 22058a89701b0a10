// Golden tables for routing (docs/QMAIL.md A.1-A.9) and bounce prefix removal (F.6), built from real control files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Control } from '../control/index.js';
import { QuailError } from '../core/index.js';
import { route, routeControlFrom, stripVirtualPrefix, type RouteControl } from './index.js';

const ORACLE = { me: 'mx.oracle.test\n', locals: 'mx.oracle.test\nlocal.test\n' };

/** Writes the control files into a fresh temp root and builds the RouteControl from them. */
function rcFrom(files: Record<string, string>): RouteControl {
  const root = mkdtempSync(join(tmpdir(), 'quail-route-'));
  try {
    mkdirSync(join(root, 'control'));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(root, 'control', name), text, 'latin1');
    return routeControlFrom(new Control(root));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

interface Case {
  readonly id: string;
  readonly control: Record<string, string>;
  /** recipient -> [channel, channel address] */
  readonly expect: ReadonlyArray<readonly [string, 'local' | 'remote', string]>;
}

const CASES: readonly Case[] = [
  { id: 'loc-001 plain local', control: ORACLE, expect: [['qoalice@local.test', 'local', 'qoalice@local.test']] },
  {
    id: 'loc-002 case kept, match ignores case',
    control: ORACLE,
    expect: [['QOAlice@LOCAL.Test', 'local', 'QOAlice@LOCAL.Test']],
  },
  {
    id: 'loc-003 locals syntax',
    control: { me: 'mx.oracle.test\n', locals: '# a comment line\nLOCAL.TEST   \n\n\t\nmx.oracle.test\t\n' },
    expect: [
      ['qoalice@local.test', 'local', 'qoalice@local.test'],
      ['joe@MX.oracle.TEST', 'local', 'joe@MX.oracle.TEST'],
      ['joe@#', 'remote', 'joe@#'],
      ['joe@# a comment line', 'remote', 'joe@# a comment line'],
    ],
  },
  {
    id: '0.2 leading whitespace kept',
    control: { me: 'mx.test\n', locals: ' dom.test\nlast.test' },
    expect: [
      ['joe@dom.test', 'remote', 'joe@dom.test'],
      ['joe@ dom.test', 'local', 'joe@ dom.test'],
      ['joe@last.test', 'local', 'joe@last.test'],
    ],
  },
  {
    id: 'loc-004 no wildcards in locals',
    control: { me: 'mx.test\n', locals: 'local.test\n.wild.test\n' },
    expect: [
      ['joe@sub.local.test', 'remote', 'joe@sub.local.test'],
      ['joe@a.wild.test', 'remote', 'joe@a.wild.test'],
      ['joe@.wild.test', 'local', 'joe@.wild.test'],
    ],
  },
  {
    id: 'loc-005 no locals: me only',
    control: { me: 'mx.oracle.test\n' },
    expect: [
      ['qoalice@mx.oracle.test', 'local', 'qoalice@mx.oracle.test'],
      ['qoalice@local.test', 'remote', 'qoalice@local.test'],
    ],
  },
  {
    id: 'A.4 empty locals file: nothing local',
    control: { me: 'mx.test\n', locals: '' },
    expect: [['joe@mx.test', 'remote', 'joe@mx.test']],
  },
  {
    id: 'loc-006 envnoathost file',
    control: { ...ORACLE, envnoathost: 'local.test\n' },
    expect: [
      ['qoalice', 'local', 'qoalice@local.test'],
      ['', 'local', '@local.test'],
    ],
  },
  {
    id: 'loc-007 envnoathost defaults to me',
    control: ORACLE,
    expect: [['qoalice', 'local', 'qoalice@mx.oracle.test']],
  },
  {
    id: 'G envnoathost literal fallback',
    control: { locals: 'local.test\n' },
    expect: [['joe', 'remote', 'joe@envnoathost']],
  },
  { id: 'loc-018 trailing dot', control: ORACLE, expect: [['qoalice@local.test.', 'remote', 'qoalice@local.test.']] },
  { id: 'loc-019 last @', control: ORACLE, expect: [['qoalice@foo@local.test', 'local', 'qoalice@foo@local.test']] },
  {
    id: 'loc-008 percenthack',
    control: { ...ORACLE, percenthack: 'local.test\nGW.test\n' },
    expect: [
      ['joe%other.test@local.test', 'remote', 'joe@other.test'],
      ['joe%local.test@gw.test', 'local', 'joe@local.test'],
      ['a%b.test%gw.test@gw.test', 'remote', 'a@b.test'],
      ['a%local.test%gw.test@GW.TEST', 'local', 'a@local.test'],
      ['joe@gw.test', 'remote', 'joe@gw.test'],
      ['qoalice@local.test', 'local', 'qoalice@local.test'],
      // the loop looks at the text after the converted %, the channel at the last @ (qmail-send rewrite())
      ['a%b@c.test@gw.test', 'remote', 'a@b@c.test'],
    ],
  },
  {
    id: 'A.2 no percenthack file: no rewriting',
    control: ORACLE,
    expect: [['joe%local.test@gw.test', 'remote', 'joe%local.test@gw.test']],
  },
  {
    id: 'A.1 then A.2: envnoathost can be a percenthack domain',
    control: { me: 'gw.test\n', locals: 'local.test\n', percenthack: 'gw.test\n' },
    expect: [['joe%local.test', 'local', 'joe@local.test']],
  },
  {
    id: 'vd-001 domain to user',
    control: { ...ORACLE, virtualdomains: 'virt.test:qovpop\n' },
    expect: [
      ['joe@virt.test', 'local', 'qovpop-joe@virt.test'],
      ['joe@sub.virt.test', 'remote', 'joe@sub.virt.test'],
    ],
  },
  {
    id: 'vd-005 exceptions',
    control: { ...ORACLE, virtualdomains: 'virt.test:vdom\npostmaster@virt.test:\n.virt.test:vsuf\nx.virt.test:\n' },
    expect: [
      ['postmaster@virt.test', 'remote', 'postmaster@virt.test'],
      ['joe@virt.test', 'local', 'vdom-joe@virt.test'],
      ['joe@x.virt.test', 'remote', 'joe@x.virt.test'],
      ['joe@y.x.virt.test', 'local', 'vsuf-joe@y.x.virt.test'],
      ['joe@z.virt.test', 'local', 'vsuf-joe@z.virt.test'],
    ],
  },
  {
    id: 'vd-006 empty pattern catch-all',
    control: { ...ORACLE, virtualdomains: ':vall\nvirt.test:vdom\n' },
    expect: [
      ['joe@[192.0.2.7]', 'local', 'vall-joe@[192.0.2.7]'],
      ['joe@virt.test', 'local', 'vdom-joe@virt.test'],
      ['joe@local.test', 'local', 'joe@local.test'],
      ['joe@', 'local', 'vall-joe@'],
    ],
  },
  {
    id: 'vd-007 locals win',
    control: { ...ORACLE, locals: 'mx.oracle.test\nlocal.test\nvirt.test\n', virtualdomains: 'virt.test:vdom\n' },
    expect: [['qoalice@virt.test', 'local', 'qoalice@virt.test']],
  },
  {
    id: 'vd-008 case-insensitive match, case kept',
    control: { ...ORACLE, virtualdomains: 'Virt.TEST:vdom\nBOB@virt.test:vbob\n' },
    expect: [
      ['Joe@VIRT.test', 'local', 'vdom-Joe@VIRT.test'],
      ['bob@VIRT.TEST', 'local', 'vbob-bob@VIRT.TEST'],
    ],
  },
  {
    id: 'vd-009 duplicates: last line wins',
    control: { ...ORACLE, virtualdomains: 'virt.test:first\nVIRT.test:second\n' },
    expect: [['joe@virt.test', 'local', 'second-joe@virt.test']],
  },
  {
    id: 'vd-013 file syntax',
    control: {
      ...ORACLE,
      virtualdomains: '# comment: this is ignored\n\n a.test:va\nb.test:vb   \t\nc.test\n#d.test:vd\nd.test:vd2\n',
    },
    expect: [
      ['joe@a.test', 'remote', 'joe@a.test'],
      ['joe@b.test', 'local', 'vb-joe@b.test'],
      ['joe@c.test', 'remote', 'joe@c.test'],
      ['joe@d.test', 'local', 'vd2-joe@d.test'],
      ['joe@ a.test', 'local', 'va-joe@ a.test'],
    ],
  },
  {
    id: 'vd-014 prefix containing colon',
    control: { ...ORACLE, virtualdomains: 'virt.test:v:x\n' },
    expect: [['joe@virt.test', 'local', 'v:x-joe@virt.test']],
  },
  {
    id: 'vd-015 address pattern beats suffix',
    control: { ...ORACLE, virtualdomains: 'joe@a.virt.test:vjoe\n.virt.test:vsuf\n' },
    expect: [
      ['joe@a.virt.test', 'local', 'vjoe-joe@a.virt.test'],
      ['bob@a.virt.test', 'local', 'vsuf-bob@a.virt.test'],
      ['JOE@A.VIRT.TEST', 'local', 'vjoe-JOE@A.VIRT.TEST'],
    ],
  },
  {
    id: 'vd-016 longer patterns win; .suffix never matches the bare name',
    control: { ...ORACLE, virtualdomains: '.c:vc\n.b.c:vbc\nvirt.test:v1\n.virt.test:v2\nsub.virt.test:v3\n' },
    expect: [
      ['joe@a.b.c', 'local', 'vbc-joe@a.b.c'],
      ['joe@b.c', 'local', 'vc-joe@b.c'],
      ['joe@x.c', 'local', 'vc-joe@x.c'],
      ['joe@c', 'remote', 'joe@c'],
      ['joe@virt.test', 'local', 'v1-joe@virt.test'],
      ['joe@x.virt.test', 'local', 'v2-joe@x.virt.test'],
      ['joe@sub.virt.test', 'local', 'v3-joe@sub.virt.test'],
      ['joe@a.sub.virt.test', 'local', 'v2-joe@a.sub.virt.test'],
    ],
  },
  {
    id: 'vd-020 exception blocks shorter patterns only for its candidate',
    control: { ...ORACLE, virtualdomains: ':vall\nabuse@virt.test:\nvirt.test:\n' },
    expect: [
      ['abuse@virt.test', 'remote', 'abuse@virt.test'],
      ['joe@virt.test', 'remote', 'joe@virt.test'],
      ['joe@sub.virt.test', 'local', 'vall-joe@sub.virt.test'],
      ['joe@other.test', 'local', 'vall-joe@other.test'],
    ],
  },
  {
    id: 'vd-022 percenthack then virtual',
    control: { ...ORACLE, virtualdomains: 'virt.test:vdom\n', percenthack: 'gw.test\n' },
    expect: [['joe%virt.test@gw.test', 'local', 'vdom-joe@virt.test']],
  },
  {
    id: 'vd-023 variants',
    control: { ...ORACLE, virtualdomains: 'joe@addr.test:vjoe\nvirt.test:vdom\n.wild.test:vsuf\n:vall\n' },
    expect: [
      ['joe@addr.test', 'local', 'vjoe-joe@addr.test'],
      ['joe@virt.test', 'local', 'vdom-joe@virt.test'],
      ['joe@a.wild.test', 'local', 'vsuf-joe@a.wild.test'],
      ['joe@elsewhere.test', 'local', 'vall-joe@elsewhere.test'],
    ],
  },
  {
    id: 'vd-024 prefix case kept',
    control: { ...ORACLE, virtualdomains: 'virt.test:VDom\n' },
    expect: [['joe@virt.test', 'local', 'VDom-joe@virt.test']],
  },
];

for (const c of CASES) {
  void test(`route: ${c.id}`, () => {
    const rc = rcFrom(c.control);
    for (const [rcpt, channel, address] of c.expect) {
      const d = route(rcpt, rc);
      assert.deepEqual([d.channel, d.address], [channel, address], `recipient ${JSON.stringify(rcpt)}`);
    }
  });
}

void test('route: loc-020 neither me nor locals is a temporary error', () => {
  assert.throws(
    () => rcFrom({ virtualdomains: 'virt.test:vdom\n' }),
    (e: unknown) => e instanceof QuailError && e.temporary,
  );
});

void test('route: why names the file, line and pattern that decided', () => {
  const rc = rcFrom({ ...ORACLE, virtualdomains: '# vd\nvirt.test:vdom\npostmaster@virt.test:\n.virt.test:vsuf\n' });
  const v = route('joe@a.virt.test', rc).why.join('\n');
  assert.match(v, /control\/virtualdomains line 4 "\.virt\.test:vsuf" \(suffix pattern "\.virt\.test"\)/);
  assert.match(v, /local channel as vsuf-joe@a\.virt\.test/);
  const x = route('postmaster@virt.test', rc).why.join('\n');
  assert.match(x, /line 3 "postmaster@virt\.test:" \(address pattern "postmaster@virt\.test"\) has an empty prefix/);
  const l = route('joe@LOCAL.test', rc).why.join('\n');
  assert.match(l, /is listed in control\/locals line 2/);
  const r = route('joe@else.test', rc).why.join('\n');
  assert.match(r, /tried "joe@else\.test", "else\.test", "\.test", ""/);
  const me = route('joe@mx.test', rcFrom({ me: 'mx.test\n' })).why.join('\n');
  assert.match(me, /control\/me \(control\/locals is missing/);
  const pct = route('joe%local.test@gw.test', rcFrom({ ...ORACLE, percenthack: 'gw.test\n' })).why.join('\n');
  assert.match(pct, /"gw\.test" is in control\/percenthack: "joe%local\.test@gw\.test" rewritten to "joe@local\.test"/);
});

const STRIP: ReadonlyArray<readonly [string, string, string]> = [
  // [virtualdomains, channel address, bounce address]
  ['virt.test:vdom\n', 'vdom-nobody@virt.test', 'nobody@virt.test'], // vd-012
  ['joe@addr.test:vjoe\nvirt.test:vdom\n.wild.test:vsuf\n:vall\n', 'vjoe-joe@addr.test', 'vjoe-joe@addr.test'], // vd-023
  ['joe@addr.test:vjoe\nvirt.test:vdom\n.wild.test:vsuf\n:vall\n', 'vdom-joe@virt.test', 'joe@virt.test'],
  ['joe@addr.test:vjoe\nvirt.test:vdom\n.wild.test:vsuf\n:vall\n', 'vsuf-joe@a.wild.test', 'joe@a.wild.test'],
  ['joe@addr.test:vjoe\nvirt.test:vdom\n.wild.test:vsuf\n:vall\n', 'vall-joe@elsewhere.test', 'joe@elsewhere.test'],
  ['joe@addr.test:vjoe\naddr.test:vjoe\n', 'vjoe-joe@addr.test', 'joe@addr.test'], // same prefix at domain level
  ['virt.test:\n:vall\n', 'vall-joe@virt.test', 'vall-joe@virt.test'], // exception stops the search
  ['virt.test:VDom\n', 'vdom-joe@virt.test', 'vdom-joe@virt.test'], // prefix compared case-sensitively
  ['virt.test:VDom\n', 'VDom-joe@VIRT.test', 'joe@VIRT.test'],
  ['virt.test:vdom\n', 'vdomjoe@virt.test', 'vdomjoe@virt.test'], // needs the '-'
  ['virt.test:vdom\n', 'vdom-joe', 'vdom-joe'], // no '@'
  ['virt.test:v:x\n', 'v:x-joe@virt.test', 'joe@virt.test'],
  ['', 'joe@local.test', 'joe@local.test'],
];

void test('stripVirtualPrefix: F.6 golden table', () => {
  for (const [vd, addr, want] of STRIP) {
    const rc = rcFrom({ ...ORACLE, virtualdomains: vd });
    assert.equal(stripVirtualPrefix(addr, rc), want, `${JSON.stringify(vd)} ${addr}`);
  }
});
