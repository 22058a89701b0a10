#!/usr/bin/env node
// The `sendmail` entry point: the same as `quail sendmail ARGS...` (to be written).
process.stderr.write('sendmail: not yet available\n');
process.exitCode = 111;
