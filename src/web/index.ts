// web: the web admin's HTTP side (issue 19) — hono pages and forms, session cookies, login throttling; every read and
// change goes to a Backend (src/access's serveWeb). README.md.
export { bytes } from './pages.js';
export { createWebApp, parseQuota, type Backend, type WebLog, type WebRoute } from './app.js';
export { adoptConnection, closeServer, webServer } from './server.js';
