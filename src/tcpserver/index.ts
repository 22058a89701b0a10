// tcpserver: ucspi-tcp's tcpserver and tcprules — the listening socket both protocol servers share (README.md).
export { TcpServer, plainIp, refuseSocket, type Admitted, type Served, type Refusal } from './server.js';
export { parseTcpRules, parseTcpRulesKept, matchTcpRules } from './tcprules.js';
export { bindShared, canShareListen, type SharedListen } from './shared.js';
export { acceptTls } from './starttls.js';
export { DescriptorGuard } from './descriptors.js';
