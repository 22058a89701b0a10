// Metrics in `quail start`: the `metrics` kind of the services table, served in this process or the metricsd child.
import { QuailError } from '../core/index.js';
import { keyValues, type HostPort } from './listeners.js';
import { closeServer, metricsServer } from './metrics-http.js';
import type { FromServiceChild } from './privchild.js';
import type { ServiceDef } from './services.js';

/** A `metrics` line: `127.0.0.1:9110 metrics` (no options yet). */
export type MetricsSpec = HostPort;

/** metricsd → root: a scrape arrived; root answers with `MetricsText` of the same id. */
export interface ScrapeRequest {
  readonly type: 'scrape';
  readonly id: number;
}
/** root → metricsd: the exposition for scrape `id`. */
export interface MetricsText {
  readonly type: 'metrics';
  readonly id: number;
  readonly contentType: string;
  readonly text: string;
}
export type FromMetricsChild = FromServiceChild<ScrapeRequest>;

/**
 * The counts live in the root process (metrics.ts: they are the events every child sends it); the HTTP requests
 * are read by the metricsd child as control/quailuser, which asks root for the text once per scrape. Root parses
 * no HTTP: it answers a message of two fields from its own child.
 */
export const METRICS_SERVICE: ServiceDef<MetricsSpec, ScrapeRequest> = {
  name: 'metricsd',
  what: 'metrics',
  kinds: [
    {
      kind: 'metrics',
      port: 9110,
      about: 'Prometheus metrics over HTTP (GET /metrics); keep it on a loopback or private address',
      parse: (where, words) => {
        const o = keyValues(words);
        if (typeof o === 'string') return o;
        const extra = Object.keys(o)[0];
        return extra === undefined ? { host: where.host, port: where.port } : `unknown option "${extra}" (none yet)`;
      },
    },
  ],
  kindOf: () => 'metrics',
  script: new URL('./metrics-child.js', import.meta.url),
  optionalInDefault: false,
  busyReply: () =>
    'HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n',
  clientSpeaksFirst: { test: () => true, event: 'metricsd.lost' },
  events: { listening: 'metrics.listening', error: 'metrics.error' },
  listeningFields: (spec) => ({ address: spec.host, port: spec.port }),
  local(specs, ctx) {
    const metrics = ctx.metrics;
    if (!metrics) return Promise.reject(new QuailError('no metrics in this process', true));
    const servers = specs.map(() => metricsServer(() => metrics.render()));
    return Promise.resolve({
      listeners: servers.map((s, i) => {
        const spec = specs[i] as MetricsSpec;
        return {
          listen: () =>
            new Promise((resolve, reject) => {
              s.once('error', reject);
              s.listen(spec.port, spec.host, () => {
                s.off('error', reject);
                const a = s.address();
                if (a === null || typeof a === 'string') reject(new Error('no address'));
                else resolve(a);
              });
            }),
          close: (g: number) => closeServer(s, g),
        };
      }),
      reload: () => undefined,
      close: () => Promise.resolve(),
    });
  },
  parent(ctx, post) {
    return {
      onMessage: (m) => {
        if (m.type !== 'scrape' || !ctx.metrics || !Number.isSafeInteger(m.id)) return;
        void ctx.metrics.render().then(
          (r) => post({ type: 'metrics', id: m.id, contentType: r.contentType, text: r.text } satisfies MetricsText),
          () => post({ type: 'metrics', id: m.id, contentType: '', text: '' } satisfies MetricsText),
        );
      },
      close: () => Promise.resolve(),
    };
  },
};
