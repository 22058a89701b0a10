// lineio: the pull-style stream reader shared by the SMTP and POP3 servers, and their listeners' stress mode.
export { Reader } from './reader.js';
export { ListenerStress, type StressGauge } from './stress.js';
