#!/usr/bin/env node
// The `sendmail` entry point (also answers as `mailq`): the same as `quail sendmail ARGS...`.
import { basename } from 'node:path';
import { runSendmail } from './sendmail-cmd.js';

const invokedAs = basename(process.argv[1] ?? 'sendmail').replace(/\.js$/, '');
process.exitCode = await runSendmail(
  invokedAs === 'mailq' ? 'mailq' : 'sendmail',
  process.argv.slice(2),
  invokedAs === 'mailq',
);
