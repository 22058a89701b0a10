// The list of quail's commands: each module registers its subcommand(s) on the program.
import type { Command } from 'commander';
import { register as init } from './init.js';
import { register as showctl } from './showctl.js';
import { register as newu } from './newu.js';
import { register as newmrh } from './newmrh.js';
import { register as explain } from './explain.js';
import { register as local } from './local.js';
import { register as maildirmake } from './maildirmake.js';
import { register as queue } from './queue.js';
import { register as inject } from './inject.js';
import { register as sendmail } from './sendmail-cmd.js';
import { register as start } from './start.js';
import { register as status } from './status.js';
import { register as domain } from './domain.js';
import { register as user } from './user.js';
import { register as alias } from './alias.js';
import { register as directory } from './directory.js';
import { register as checkpassword } from './checkpassword.js';
import { register as vdeliver } from './vdeliver.js';
import { register as remote } from './remote.js';
import { register as vpopmail } from './vpopmail.js';
import { register as importCmd } from './import.js';
import { register as quota } from './quota.js';
import { register as backup } from './backup.js';
import { register as dovecotConf } from './dovecot-conf.js';
import { register as dkim } from './dkim.js';
import { register as toolbox } from './toolbox.js';
import { register as systemd } from './systemd.js';
import { register as queueInject } from './queue-inject.js';
import { register as filter } from './filter.js';
import { register as maildirsmtp } from './maildirsmtp.js';
import { register as held } from './held.js';
import { register as list } from './list.js';
import { register as office } from './office.js';

export const COMMANDS: ReadonlyArray<(program: Command) => void> = [
  init,
  showctl,
  newu,
  newmrh,
  explain,
  local,
  maildirmake,
  queue,
  inject,
  queueInject,
  filter,
  sendmail,
  start,
  status,
  domain,
  user,
  alias,
  directory,
  checkpassword,
  vdeliver,
  remote,
  vpopmail,
  importCmd,
  quota,
  backup,
  dovecotConf,
  dkim,
  toolbox,
  systemd,
  maildirsmtp,
  held,
  list,
  office,
];
