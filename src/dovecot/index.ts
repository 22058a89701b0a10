// dovecot: configuration for Dovecot serving quail's mailboxes over IMAP (and POP3 for the bench); docs/IMAP.md.
export { dovecotConfig, checkpasswordScript } from './config.js';
