import type { IncomingHttpHeaders } from 'node:http'
import type { Table } from '../tables/table.js'
import type { Topic } from '../topics/topic.js'

/** Where the worker's web server listens. */
export interface WebOptions {
  /** TCP port. Default 6066; `0` picks a free port (read it back from `app.webUrl`). */
  port?: number
  /** Interface to bind. Default `127.0.0.1`: only this machine can connect unless you say otherwise. */
  host?: string
  /**
   * Host names requests may name in their `Host` header, besides the defaults: `localhost`, any
   * IP address, and `host` when it is a name. Others get 403 `HOST_NOT_ALLOWED`, which stops a web
   * page from reading the server through DNS rebinding. `'.example.com'` allows example.com and
   * its subdomains; `'*'` allows any name (then set a `token`).
   */
  allowedHosts?: string[]
  /**
   * When set, every request but `/health` needs `Authorization: Bearer <token>` (or, for GET and
   * HEAD, Basic with the token as password, so a browser can open the dashboard); others get 401.
   * Set it whenever `host` is reachable from other machines. The CLI reads `MEPHISTO_WEB_TOKEN`.
   */
  token?: string
  /**
   * `/health` answers 503 `degraded` (with the agents named) while an agent has held one event
   * longer than this (ms). Default 60 000. An agent's `eventTimeoutMs` bounds the event itself.
   */
  stalledAfterMs?: number
  /**
   * The address the app's other workers reach this server at, as `http(s)://host:port`: they
   * forward to it the requests for keys this worker owns (docs/monitoring.md, "Any key from any
   * worker"). Default: the address the server listens on, or, when it binds every interface
   * (`0.0.0.0`, `::`), this machine's first non-internal IPv4 address with the port. Its host
   * name is allowed as `Host` (see `allowedHosts`).
   */
  advertisedUrl?: string
  /**
   * Whether a request for a key another worker owns is forwarded to that worker (`/tables/:name/:key`
   * and pages with `routeBy`). Default `true`; `false` answers `421 NOT_OWNED` naming the owner.
   */
  forward?: boolean
  /** How long a forwarded request may take before it is answered `503` (ms). Default 5 000. */
  forwardTimeoutMs?: number
}

/**
 * The key that decides which worker serves a page (Faust's `table_route` and `topic_route`): the
 * route parameter `param`, as a key of `table` (the worker that owns its table partition) or of
 * `topic` (the worker assigned its partition). Another worker forwards the request there.
 */
export type PageRouteBy =
  | { table: Table<any, any>; param: string }
  | { topic: Topic<any, any>; param: string }

/** `app.page(path, handler, options)` */
export interface PageOptions {
  /** Serve the page on the worker that owns the key in this route parameter (see {@link PageRouteBy}). */
  routeBy?: PageRouteBy
}

/** What a page handler gets: the parts of the HTTP request a page needs. */
export interface WebRequest {
  /** Upper-case HTTP method. */
  method: string
  /** The decoded path, without the query string. */
  path: string
  /** Values of the `:name` segments of the route pattern, decoded. */
  params: Record<string, string>
  /** The query string. */
  query: URLSearchParams
  headers: IncomingHttpHeaders
  /** The request body as text (empty for GET and HEAD). At most 1 MiB; larger bodies get 413. */
  body: string
}

/**
 * A full response. A handler that returns an object whose only keys are `status`, `headers` and
 * `body` (with `status` or `body` present) is answered with it: a string or Buffer `body` is sent as
 * it is, anything else is JSON-encoded. Any other return value is JSON-encoded with status 200; to
 * send data that happens to have that shape as JSON, wrap it: `{ body: data }`.
 */
export interface WebResponse {
  status?: number
  headers?: Record<string, string>
  body?: unknown
}

/** A custom page (`app.page(path, handler)`) or a route a sensor serves. */
export type PageHandler = (request: WebRequest) => unknown

/**
 * The extension point for sensors that serve pages on the worker's web server: a sensor in
 * `app.sensors` that has a `webRoutes()` method gets its routes mounted (the Prometheus monitor
 * serves `/metrics` this way). Paths are patterns like the ones `app.page` takes. Read on every
 * request, so a sensor added while the worker runs is served at once.
 */
export interface WebRoutes {
  webRoutes(): Readonly<Record<string, PageHandler>>
}

/** Whether `x` implements {@link WebRoutes}. */
export function hasWebRoutes(x: unknown): x is WebRoutes {
  return typeof x === 'object' && x !== null && typeof (x as Partial<WebRoutes>).webRoutes === 'function'
}

const RESPONSE_KEYS = new Set(['status', 'headers', 'body'])

/** Whether a handler's return value is a {@link WebResponse} rather than data to JSON-encode. */
export function isWebResponse(x: unknown): x is WebResponse {
  if (typeof x !== 'object' || x === null || Array.isArray(x) || Buffer.isBuffer(x)) return false
  const keys = Object.keys(x)
  if (keys.length === 0 || !keys.every((k) => RESPONSE_KEYS.has(k))) return false
  if (!('status' in x) && !('body' in x)) return false
  const status = (x as WebResponse).status
  return status === undefined || (Number.isInteger(status) && status >= 100 && status <= 599)
}
