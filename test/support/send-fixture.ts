// Test support (not a test): stands in for send-child.js — speaks its protocol, asks root for one delivery, crashes once.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { reportCrashes } from '../../src/start/child-common.js';
import type { FromSend, ToSend } from '../../src/start/send.js';

const root = process.argv[2] ?? '.';
const send = (m: FromSend): void => void process.send?.(m);
reportCrashes();
process.on('message', (m: ToSend) => {
  if (m.type === 'start') {
    send({ type: 'started' });
    send({ type: 'deliver', id: 1, request: { msg: '../../etc/shadow', local: 'x', domain: 'd', sender: '' } });
  } else if (m.type === 'delivered') {
    // A catalogued name: the parent logs only those (send.delivery is the event a real child would log for it).
    send({
      type: 'log',
      event: 'send.delivery',
      fields: { delivery: m.id, msg: 'fixture', result: m.result.result, report: m.result.report },
    });
    const marker = join(root, 'crashed');
    if (!existsSync(marker)) {
      writeFileSync(marker, '');
      setTimeout(() => {
        throw new Error('fixture boom');
      }, 10);
    }
  } else if (m.type === 'stop') process.exit(0);
});
send({ type: 'ready', uid: process.getuid?.() ?? -1, gid: process.getgid?.() ?? -1 });
