// `npm run conformance -- [--corpus DIR] [--kind K] [--only ID]`: run qmail oracle scenarios against quail.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { errText } from '../../src/core/index.js';
import { runCorpus } from './runner.js';
import { pinnedCorpus } from './world.js';

const program = new Command()
  .name('quail-conformance')
  .description('Runs qmail oracle scenarios (FORMAT.md) against quail: one PASS/FAIL/SKIP line each, then a summary.')
  .option(
    '--corpus <dir>',
    'directory of scenario *.json files (default: the pinned copy test/conformance/corpus in the package)',
  )
  .option('--kind <kind>', 'only scenarios of this kind (newu, getpw, delivery, smtp, local-dryrun, inject)')
  .option('--only <id>', 'only the scenario with this id (or id prefix)')
  .exitOverride();

try {
  program.parse(process.argv);
  const opts = program.opts<{ corpus?: string; kind?: string; only?: string }>();
  const corpus = opts.corpus !== undefined ? resolve(opts.corpus) : pinnedCorpus();
  if (!existsSync(corpus)) {
    process.stderr.write(`quail-conformance: fatal: corpus directory ${corpus} does not exist; pass --corpus DIR\n`);
    process.exit(111);
  }
  const summary = await runCorpus({
    corpus,
    ...(opts.kind !== undefined ? { kind: opts.kind } : {}),
    ...(opts.only !== undefined ? { only: opts.only } : {}),
    out: (line) => process.stdout.write(`${line}\n`),
  });
  process.exitCode = summary.failed > 0 ? 1 : 0;
} catch (err) {
  if (err instanceof CommanderError) process.exitCode = err.exitCode === 0 ? 0 : 100;
  else {
    process.stderr.write(`quail-conformance: fatal: ${errText(err)}\n`);
    process.exitCode = 111;
  }
}
