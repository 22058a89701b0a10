// The admin kind's options: a golden table of control/listeners words → the spec, or what is wrong.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseListeners } from './services.js';
import { parseWebSpec } from './web-service.js';

void test('parseWebSpec: tls=implicit, proxy=yes, and what is refused', () => {
  const at = { host: '127.0.0.1', port: 8080 };
  const cases: Array<[string[], ReturnType<typeof parseWebSpec>]> = [
    [[], { ...at, tls: false, proxy: false }],
    [['tls=implicit'], { ...at, tls: true, proxy: false }],
    [['proxy=yes'], { ...at, tls: false, proxy: true }],
    [['proxy=no'], { ...at, tls: false, proxy: false }],
    [['tls=starttls'], 'tls=starttls: only tls=implicit (HTTPS with servercert.pem)'],
    [['proxy=maybe'], 'proxy=maybe: yes or no'],
    [['tls=implicit', 'proxy=yes'], 'tls=implicit and proxy=yes: choose one (who terminates TLS?)'],
    [['port=1'], 'unknown option "port" (tls=implicit, proxy=yes)'],
    [['secure'], 'option "secure" is not key=value'],
  ];
  for (const [words, want] of cases) assert.deepEqual(parseWebSpec(at, words), want, words.join(' '));
});

void test('control/listeners: an admin line is the webd service', () => {
  const { listeners, errors } = parseListeners('127.0.0.1:8080 admin\n127.0.0.1:8443 admin tls=implicit\n');
  assert.deepEqual(errors, []);
  assert.deepEqual(
    listeners.map((l) => `${l.service} ${l.kind} ${l.spec.port}`),
    ['webd admin 8080', 'webd admin 8443'],
  );
  assert.match(parseListeners('127.0.0.1:8080 admin tls=yes\n').errors[0]?.reason ?? '', /only tls=implicit/);
});
