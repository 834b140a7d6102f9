/**
 * Any key from any worker: a request for a key another worker of the group owns is sent on to
 * that worker (found in the route book), once, and its answer is handed back as it came, naming
 * the worker that answered. It decides and forwards; it reads no table itself.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { ConfigurationError } from '../base/errors.js'
import type { PageHandler, WebOptions, WebRequest, WebResponse } from './page.js'
import type { Placement } from './placement.js'
import { isPlacement, placeTableKey, placeTopicKey } from './placement.js'
import type { RoutePattern } from './route.js'
import type { PageRoute, WebHost, WebRouter } from './webHost.js'

/** Names the worker that answered a request (every answer of the web server carries it). */
export const WORKER_HEADER = 'x-mephisto-worker'
/** Marks a forwarded request with the worker that forwarded it: it is never forwarded again. */
export const FORWARDED_HEADER = 'x-mephisto-forwarded-by'
export const DEFAULT_FORWARD_TIMEOUT_MS = 5_000

/** Request headers not passed on: the connection's own, and those the forward sets itself. */
const NOT_FORWARDED = new Set([
  'host',
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'content-length',
  'accept-encoding',
  'authorization',
  FORWARDED_HEADER,
])

/** Response headers not handed back: the server sets these for its own answer. */
const NOT_RETURNED = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'content-encoding',
  'date',
])

function unavailable(error: string, message: string, extra: Record<string, unknown> = {}): WebResponse {
  return { status: 503, headers: { 'retry-after': '1' }, body: { error, message, ...extra } }
}

/** The encoded path of `route` with `params` filled in. */
export function pathOf(route: RoutePattern, params: Record<string, string>): string {
  const parts = route.segments.map((s) =>
    encodeURIComponent('literal' in s ? s.literal : (params[s.param] ?? '')),
  )
  return `/${parts.join('/')}`
}

export class Forwarder {
  private readonly timeoutMs: number

  constructor(
    private readonly host: WebHost,
    /** Undefined: no route book (a server outside a worker); every key is served here. */
    private readonly router: WebRouter | undefined,
    private readonly options: WebOptions,
  ) {
    const timeout = options.forwardTimeoutMs
    if (timeout !== undefined && !(typeof timeout === 'number' && timeout > 0 && timeout < 2 ** 31)) {
      throw new ConfigurationError(`web.forwardTimeoutMs must be a positive number of ms (got ${timeout})`)
    }
    this.timeoutMs = timeout ?? DEFAULT_FORWARD_TIMEOUT_MS
  }

  /** This worker's id, when it runs in a worker. */
  get workerId(): string | undefined {
    return this.router?.workerId
  }

  /**
   * Undefined when the request is served here; else the answer: the owner's, or `503` when no
   * owner is known, it does not answer in time, or the request was forwarded here already; `421`
   * naming the owner when forwarding is off. `path` is the request's encoded path.
   */
  async elsewhere(req: WebRequest, placed: Placement, path: string): Promise<WebResponse | undefined> {
    if (placed.local || this.router === undefined) return undefined
    const { what, partition } = placed
    const from = header(req.headers, FORWARDED_HEADER)
    if (from !== undefined) {
      return unavailable(
        'NOT_OWNER',
        `worker ${from} forwarded this request here as the owner of ${what}, but this worker does not own it ` +
          `(the group is rebalancing, or a route is stale); try again`,
      )
    }
    const owner = this.router.ownerOf(partition)
    if (owner === undefined || owner.worker === this.router.workerId) {
      return unavailable(
        'NO_OWNER',
        `no worker of app ${this.host.app.id} is known to own ${what}: the group may be rebalancing, or the ` +
          `owner serves no web server (web: false); try again shortly`,
        { partition },
      )
    }
    if (this.options.forward === false) {
      return {
        status: 421,
        body: {
          error: 'NOT_OWNED',
          message: `${what} is owned by worker ${owner.worker} at ${owner.url}; ask it (web.forward is false)`,
          partition,
          owner,
        },
      }
    }
    return this.forward(req, owner.worker, owner.url, path, what)
  }

  /** The handler of a page with `routeBy`: forwards to the owner of the key, or runs the page here. */
  page(page: PageRoute): PageHandler {
    const by = page.routeBy
    if (!by) return page.handler
    return async (req) => {
      const raw = req.params[by.param] ?? ''
      // Before the worker runs there is no ownership to go by: the page answers as it would alone.
      const running = this.host.state === 'running' || this.host.state === 'stopping'
      const placed =
        'table' in by
          ? placeTableKey(this.host, by.table, raw)
          : placeTopicKey(this.host, this.router, by.topic, raw)
      if (!isPlacement(placed)) return placed
      if (running) {
        const answer = await this.elsewhere(req, placed, pathOf(page.route, req.params))
        if (answer) return answer
      }
      return page.handler(req)
    }
  }

  private async forward(
    req: WebRequest,
    worker: string,
    url: string,
    path: string,
    what: string,
  ): Promise<WebResponse> {
    const query = req.query.toString()
    const target = `${url}${path}${query ? `?${query}` : ''}`
    const headers: Record<string, string> = {}
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || NOT_FORWARDED.has(name)) continue
      headers[name] = Array.isArray(value) ? value.join(', ') : value
    }
    headers[FORWARDED_HEADER] = this.router!.workerId
    if (this.options.token !== undefined) headers.authorization = `Bearer ${this.options.token}`
    const withBody = req.method !== 'GET' && req.method !== 'HEAD'
    try {
      const res = await fetch(target, {
        method: req.method,
        headers,
        ...(withBody && { body: req.body }),
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
      })
      const body = Buffer.from(await res.arrayBuffer())
      const back: Record<string, string> = {}
      res.headers.forEach((value, name) => {
        if (!NOT_RETURNED.has(name)) back[name] = value
      })
      back[WORKER_HEADER] ??= worker
      return { status: res.status, headers: back, body }
    } catch (err) {
      const timedOut = (err as Error)?.name === 'TimeoutError'
      const reason = timedOut
        ? `did not answer within ${this.timeoutMs} ms`
        : `could not be reached (${causeOf(err)})`
      return unavailable(
        'OWNER_UNAVAILABLE',
        `worker ${worker}, the owner of ${what}, ${reason} at ${url}; try again`,
        { owner: { worker, url } },
      )
    }
  }
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name]
  return Array.isArray(v) ? v[0] : v
}

function causeOf(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause
  return cause?.code ?? cause?.message ?? (err as Error)?.message ?? String(err)
}
