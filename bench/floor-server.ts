// The floor of a Node receiver (docs/PERFORMANCE.md, twenty-third pass): the least an SMTP server on Node can spend
// per message under the versus section's load (one message per session, no pipelining). Not quail: no queue, no
// checks, no log. Each message is written to a new file in DIR and, with `fsync`, synced before its 250.
//
//   node build/bench/floor-server.js DIR PORT fsync|nofsync|nofile N
//   smtp-source -s 10 -m 1000 -l 4096 -f a@x.test -t b@y.test 127.0.0.1:PORT      (the warm-up, not counted)
//   smtp-source -s 10 -m N -l 4096 -f a@x.test -t b@y.test 127.0.0.1:PORT
//
// After the first 1,000 messages it reads its CPU (process.cpuUsage: every thread, the fsyncs' pool included), and
// after N more it prints the CPU per message and exits.
import { closeSync, fsync, openSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';

const [dir, portText, mode, countText] = process.argv.slice(2);
if (dir === undefined || portText === undefined || !['fsync', 'nofsync', 'nofile'].includes(mode ?? '')) {
  process.stderr.write('usage: floor-server DIR PORT fsync|nofsync|nofile N\n');
  process.exit(100);
}
const WARMUP = 1000;
const count = Number(countText ?? '3000');
let done = 0;
let seq = 0;
let start: { cpu: NodeJS.CpuUsage; at: number } | undefined;

function counted(): void {
  done++;
  if (done === WARMUP) start = { cpu: process.cpuUsage(), at: performance.now() };
  if (start !== undefined && done === WARMUP + count) {
    const cpu = process.cpuUsage(start.cpu);
    const seconds = (performance.now() - start.at) / 1000;
    process.stdout.write(
      `${mode ?? ''}: ${((cpu.user + cpu.system) / 1000 / count).toFixed(3)} ms CPU per message ` +
        `(user ${(cpu.user / 1000 / count).toFixed(3)}), ${Math.round(count / seconds)} msg/s\n`,
    );
    setTimeout(() => process.exit(0), 200); // the last client's QUIT still answered
  }
}

createServer((sock) => {
  let buf = '';
  let inData = false;
  let body: string[] = [];
  const reply = (text: string): void => void sock.write(text);
  sock.write('220 floor ESMTP\r\n');
  sock.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    for (;;) {
      if (inData) {
        const end = buf.indexOf('\r\n.\r\n');
        if (end < 0) {
          if (buf.length > 5) {
            body.push(buf.slice(0, buf.length - 4));
            buf = buf.slice(buf.length - 4);
          }
          return;
        }
        body.push(buf.slice(0, end + 2));
        buf = buf.slice(end + 5);
        inData = false;
        const data = Buffer.from(body.join(''), 'latin1');
        body = [];
        if (mode === 'nofile') {
          reply('250 ok\r\n');
          counted();
          continue;
        }
        const fd = openSync(`${dir}/${process.pid}.${++seq}`, 'w');
        writeSync(fd, data);
        if (mode === 'nofsync') {
          closeSync(fd);
          reply('250 ok\r\n');
          counted();
          continue;
        }
        fsync(fd, () => {
          closeSync(fd);
          reply('250 ok\r\n');
          counted();
        });
        continue;
      }
      const nl = buf.indexOf('\r\n');
      if (nl < 0) return;
      const verb = buf.slice(0, 4).toUpperCase();
      buf = buf.slice(nl + 2);
      if (verb === 'DATA') {
        inData = true;
        reply('354 go ahead\r\n');
      } else if (verb === 'QUIT') sock.end('221 bye\r\n');
      else if (verb === 'EHLO') reply('250-floor\r\n250 PIPELINING\r\n');
      else reply('250 ok\r\n');
    }
  });
  sock.on('error', () => undefined);
}).listen(Number(portText), '127.0.0.1');
