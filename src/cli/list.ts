// quail list create|delete|list|show|subscribe|unsubscribe|members|set, and the list programs list-post, list-manage.
import { readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { LIST_ROLES, type ListOptions, type ListRole, type MailingList } from '../directory/index.js';
import {
  addMembers,
  createList,
  deleteList,
  getList,
  listMembers,
  removeMembers,
  runListProgram,
  setListOptions,
  type Actor,
} from '../lists/index.js';
import { perform } from '../access/index.js';
import { action, usageError } from './common.js';
import { dirOptions, parseSize, printJson, withDirectory, type DirOpts } from './directory.js';

/** The CLI runs as root (it writes the directory): the system administrator. The roles model plugs in here. */
const SYSTEM: Actor = { kind: 'system' };

interface OptionOpts {
  membersOnly?: boolean;
  moderated?: boolean;
  prefix?: string;
  replyToList?: boolean;
  maxSize?: string;
  description?: string;
}

const onOff = (v: string, what: string): boolean => {
  if (/^(on|yes|1|true)$/i.test(v)) return true;
  if (/^(off|no|0|false)$/i.test(v)) return false;
  throw usageError(`${what} ${JSON.stringify(v)}: give on or off`);
};

function optionPatch(o: OptionOpts): Partial<ListOptions> {
  return {
    ...(o.membersOnly === undefined ? {} : { membersOnly: o.membersOnly }),
    ...(o.moderated === undefined ? {} : { moderated: o.moderated }),
    ...(o.prefix === undefined ? {} : { subjectPrefix: o.prefix }),
    ...(o.replyToList === undefined ? {} : { replyToList: o.replyToList }),
    ...(o.maxSize === undefined ? {} : { maxBytes: parseSize(o.maxSize, '--max-size') }),
    ...(o.description === undefined ? {} : { description: o.description }),
  };
}

function role(text: string | undefined): ListRole {
  const r = (text ?? 'subscriber') as ListRole;
  if (!LIST_ROLES.includes(r)) throw usageError(`--role ${JSON.stringify(text)}: give ${LIST_ROLES.join(', ')}`);
  return r;
}

const describe = (l: MailingList): Record<string, unknown> => ({
  address: `${l.local}@${l.domain}`,
  ...l.options,
  created: l.created.toISOString(),
});

function showText(l: MailingList, people: Record<ListRole, string[]>): string {
  const o = l.options;
  return [
    `list:          ${l.local}@${l.domain}${o.description === '' ? '' : ` (${o.description})`}`,
    `members-only:  ${o.membersOnly ? 'on' : 'off'}`,
    `moderated:     ${o.moderated ? 'on' : 'off'}`,
    `subject:       ${o.subjectPrefix === '' ? '(no prefix)' : JSON.stringify(o.subjectPrefix)}`,
    `reply-to-list: ${o.replyToList ? 'on' : 'off'}`,
    `max size:      ${o.maxBytes === null ? 'none' : `${o.maxBytes} bytes`}`,
    `owners:        ${people.owner.join(', ') || '(none)'}`,
    `moderators:    ${people.moderator.join(', ') || '(none)'}`,
    `subscribers:   ${people.subscriber.length}`,
    `created:       ${l.created.toISOString()}`,
    '',
  ].join('\n');
}

/** --root, else $QUAIL_ROOT, else the root above the working directory ROOT/domains/<domain> (where local runs us). */
function programRoot(): string {
  const env = process.env['QUAIL_ROOT'];
  if (env !== undefined && env !== '') return resolve(env);
  const cwd = process.cwd();
  return basename(dirname(cwd)) === 'domains' ? dirname(dirname(cwd)) : resolve('./var/quail');
}

function registerProgram(program: Command, kind: 'post' | 'manage'): void {
  program
    .command(`list-${kind}`)
    .description(
      kind === 'post'
        ? "a list's .qmail-LIST program: the message on stdin is a post (SENDER from qmail-local)"
        : "a list's .qmail-LIST-default program: subscribe, confirm, help, bounces, moderation (DEFAULT, SENDER)",
    )
    .argument('<domain>')
    .argument('<list>')
    .action(async (domain: string, list: string) => {
      let message: Buffer;
      try {
        message = readFileSync(0);
      } catch (err) {
        process.stdout.write(`Unable to read the message: ${(err as Error).message}. (#4.3.0)\n`);
        process.exitCode = 111;
        return;
      }
      const r = await runListProgram({ root: programRoot(), kind, args: [domain, list], env: process.env, message });
      process.stdout.write(`${r.text}\n`);
      process.exitCode = r.exit;
    });
}

export function register(program: Command): void {
  const list = program.command('list').description('mailing lists: create, delete, show, subscribers, settings');
  const options = (cmd: Command): Command =>
    cmd
      .option('--members-only <on|off>', 'only subscribers may post', (v) => onOff(v, '--members-only'))
      .option('--moderated <on|off>', 'posts wait for a moderator', (v) => onOff(v, '--moderated'))
      .option('--prefix <text>', 'subject prefix, e.g. "[team]" ("" for none)')
      .option('--reply-to-list <on|off>', 'Reply-To: the list', (v) => onOff(v, '--reply-to-list'))
      .option('--max-size <bytes>', 'refuse larger posts (K, M suffixes; none)')
      .option('--description <text>', 'one line for the help message and List-Id');
  options(
    dirOptions(
      list.command('create').description('create a list at ADDRESS (a directory domain)').argument('<address>'),
    ),
  )
    .option('--owner <login...>', 'logins (mailbox addresses) who manage the list')
    .option('--moderator <address...>', 'who approves posts of a moderated list')
    .action(
      action('list create', (address: string, o: DirOpts & OptionOpts & { owner?: string[]; moderator?: string[] }) =>
        withDirectory(o, async (ctx) => {
          const l = await createList(ctx, {
            address,
            owners: o.owner ?? [],
            moderators: o.moderator ?? [],
            options: optionPatch(o),
          });
          if (o.json === true) printJson(describe(l));
          else process.stdout.write(`created list ${l.local}@${l.domain}\n`);
        }),
      ),
    );
  dirOptions(
    list.command('delete').description('delete a list (its archive too, unless --keep-files)').argument('<address>'),
  )
    .option('--keep-files', "keep the list's directory (archive, held posts)")
    .action(
      action('list delete', (address: string, o: DirOpts & { keepFiles?: boolean }) =>
        withDirectory(o, async (ctx) => {
          await deleteList(ctx, address, o.keepFiles === true);
          process.stdout.write(`deleted list ${address.toLowerCase()}\n`);
        }),
      ),
    );
  dirOptions(list.command('list').description('every list, or a domain’s').argument('[domain]')).action(
    action('list list', (domain: string | undefined, o: DirOpts) =>
      withDirectory(o, async ({ dir }) => {
        const all = await dir.lists.all(domain);
        if (o.json === true) printJson(all.map(describe));
        else for (const l of all) process.stdout.write(`${l.local}@${l.domain}\n`);
      }),
    ),
  );
  dirOptions(list.command('show').description("a list's settings and people").argument('<address>')).action(
    action('list show', (address: string, o: DirOpts) =>
      withDirectory(o, async (ctx) => {
        const l = await getList(ctx, address);
        const people = { subscriber: [], owner: [], moderator: [] } as Record<ListRole, string[]>;
        for (const r of LIST_ROLES) people[r] = (await listMembers(ctx, SYSTEM, address, r)).map((m) => m.address);
        if (o.json === true)
          printJson({
            ...describe(l),
            owners: people.owner,
            moderators: people.moderator,
            subscribers: people.subscriber,
          });
        else process.stdout.write(showText(l, people));
      }),
    ),
  );
  for (const [name, add] of [
    ['subscribe', true],
    ['unsubscribe', false],
  ] as const)
    dirOptions(
      list
        .command(name)
        .description(`${add ? 'add' : 'remove'} people (no confirmation: the administrator vouches)`)
        .argument('<address>')
        .argument('<people...>'),
    )
      .option('--role <role>', 'subscriber (default), moderator or owner')
      .action(
        action(`list ${name}`, (address: string, people: string[], o: DirOpts & { role?: string }) =>
          withDirectory(o, async (ctx) => {
            const r = role(o.role);
            const done = add
              ? await addMembers(ctx, SYSTEM, address, r, people)
              : await removeMembers(ctx, SYSTEM, address, r, people);
            process.stdout.write(
              `${done.length} ${add ? 'added' : 'removed'}${done.length < people.length ? ` (${people.length - done.length} ${add ? 'already there' : 'not there'})` : ''}\n`,
            );
          }),
        ),
      );
  dirOptions(list.command('members').description('the people of a list, with bounce counts').argument('<address>'))
    .option('--role <role>', 'subscriber (default), moderator or owner')
    .action(
      action('list members', (address: string, o: DirOpts & { role?: string }) =>
        withDirectory(o, async (ctx) => {
          const ms = await listMembers(ctx, SYSTEM, address, role(o.role));
          if (o.json === true) printJson(ms);
          else
            for (const m of ms)
              process.stdout.write(
                `${m.address}${m.bounces > 0 ? `  bounces ${m.bounces} since ${m.firstBounce?.toISOString() ?? '?'}${m.probeSent ? ', probe sent' : ''}` : ''}\n`,
              );
        }),
      ),
    );
  options(dirOptions(list.command('set').description("change a list's settings").argument('<address>'))).action(
    action('list set', (address: string, o: DirOpts & OptionOpts) =>
      withDirectory(o, async (ctx) => {
        const l = await setListOptions(ctx, SYSTEM, address, optionPatch(o));
        if (o.json === true) printJson(describe(l));
        else
          process.stdout.write(
            showText(l, { subscriber: [], owner: [], moderator: [] }).split('\n').slice(0, 6).join('\n') + '\n',
          );
      }),
    ),
  );
  // Whether a domain's users may create lists of their own (the web admin's list pages): through src/access's
  // perform, the same change the web's form makes.
  dirOptions(
    list
      .command('users')
      .description("may a domain's users create their own lists in the web admin? (no state: show it)")
      .argument('<domain>')
      .argument('[on|off]'),
  ).action(
    action('list users', (domain: string, state: string | undefined, o: DirOpts) =>
      withDirectory(o, async (ctx) => {
        if (state !== undefined)
          process.stdout.write(
            `${await perform(ctx, { kind: 'system' }, { op: 'list.users', domain, on: onOff(state, 'the state') })}\n`,
          );
        else {
          const on = await ctx.dir.lists.usersMayCreate(domain);
          process.stdout.write(
            `${on ? 'on' : 'off'}: users of ${domain.toLowerCase()} ${on ? 'may' : 'may not'} create their own lists\n`,
          );
        }
      }),
    ),
  );
  registerProgram(program, 'post');
  registerProgram(program, 'manage');
}
