// route: pure recipient routing (qmail-send's rewrite): locals, virtualdomains, percenthack, envnoathost.
export type { RouteControl } from './types.js';
export { route, stripVirtualPrefix } from './route.js';
export { routeControlFrom } from './control.js';
