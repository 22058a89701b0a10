// lineio: the pull-style stream reader shared by the SMTP and POP3 servers.
export { Reader } from './reader.js';
