import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { ConfigurationError, MephistoError } from '../base/errors.js'
import { builtinRoutes } from './builtinRoutes.js'
import type { PageHandler, WebOptions, WebRequest, WebResponse } from './page.js'
import { hasWebRoutes, isWebResponse } from './page.js'
import type { RoutePattern } from './route.js'
import { matchRoute, parseRoute, splitPath } from './route.js'
import type { WebHost } from './webHost.js'

/** A route: a pattern, its handler, and whether it is one of the built-in read-only pages. */
export interface WebRoute {
  route: RoutePattern
  handler: PageHandler
  builtin: boolean
}

export const DEFAULT_WEB_PORT = 6066
export const DEFAULT_WEB_HOST = '127.0.0.1'
const MAX_BODY_BYTES = 1 << 20

/** The route label of requests no route matched: one label, however many paths are probed. */
export const UNMATCHED_ROUTE = '/*'

/**
 * The worker's HTTP server on `node:http`: built-in pages (`/`, `/health`, `/stats`, `/agents`,
 * `/topics`, `/tables...`), routes of sensors implementing `WebRoutes` (`/metrics`), and the app's
 * custom pages. Every request is answered: bad paths get 4xx JSON, a failing handler 500 JSON; the
 * worker never crashes because of a request. Each request is reported to the sensors'
 * `onWebRequest` with the matched route pattern (not the raw path) so metric labels stay bounded.
 */
export class WebServer {
  private readonly server: Server
  private readonly builtins: WebRoute[]
  private bound: string | undefined

  constructor(
    private readonly host: WebHost,
    private readonly options: WebOptions = {},
  ) {
    this.builtins = Object.entries(builtinRoutes(host)).map(([pattern, handler]) => ({
      route: parseRoute(pattern),
      handler,
      builtin: true,
    }))
    this.server = createServer((req, res) => void this.handle(req, res))
    // Bounded waits, so a slow or stuck client cannot hold a socket forever.
    this.server.requestTimeout = 30_000
    this.server.headersTimeout = 10_000
    this.server.keepAliveTimeout = 5_000
    this.server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
      else socket.destroy()
    })
  }

  /** `http://host:port` once listening. */
  get url(): string | undefined {
    return this.bound
  }

  /** Starts listening; resolves with the URL. */
  async listen(): Promise<string> {
    const port = this.options.port ?? DEFAULT_WEB_PORT
    const host = this.options.host ?? DEFAULT_WEB_HOST
    if (!Number.isInteger(port) || port < 0 || port > 65_535) {
      throw new ConfigurationError(`web.port must be an integer from 0 to 65535 (got ${port})`)
    }
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(
          new ConfigurationError(
            `the web server cannot listen on ${host}:${port} (${err.code ?? err.message}). Another worker may ` +
              `be using the port: set web: { port } (0 picks a free one) or web: false.`,
            { cause: err },
          ),
        )
      }
      this.server.once('error', onError)
      this.server.listen(port, host, () => {
        this.server.off('error', onError)
        resolve()
      })
    })
    const address = this.server.address() as AddressInfo
    const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address
    this.bound = `http://${shown}:${address.port}`
    return this.bound
  }

  /** Stops listening and drops open connections (keep-alive sockets would otherwise hold it open). */
  async close(): Promise<void> {
    if (!this.server.listening) return
    this.bound = undefined
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    this.server.closeAllConnections()
    await closed
  }

  /** Every route in match order: built-ins, then sensors' routes, then the app's pages. */
  routes(): WebRoute[] {
    const routes = [...this.builtins]
    for (const sensor of this.host.app.sensors) {
      if (!hasWebRoutes(sensor)) continue
      for (const [pattern, handler] of Object.entries(sensor.webRoutes())) {
        routes.push({ route: parseRoute(pattern), handler, builtin: false })
      }
    }
    for (const page of this.host.app.pages)
      routes.push({ route: page.route, handler: page.handler, builtin: false })
    return routes
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now()
    const method = (req.method ?? 'GET').toUpperCase()
    let label = UNMATCHED_ROUTE
    let status = 500
    try {
      const raw = req.url ?? '/'
      const q = raw.indexOf('?')
      const rawPath = q < 0 ? raw : raw.slice(0, q)
      let segments: string[]
      try {
        segments = splitPath(rawPath).map((s) => decodeURIComponent(s))
      } catch {
        status = this.send(
          res,
          method,
          errorResponse(400, 'BAD_PATH', `the path ${rawPath} is not valid URL encoding`),
        )
        return
      }
      let found: { route: WebRoute; params: Record<string, string> } | undefined
      for (const route of this.routes()) {
        const params = matchRoute(route.route, segments)
        if (params) {
          found = { route, params }
          break
        }
      }
      if (!found) {
        const known = this.routes().map((r) => r.route.pattern)
        status = this.send(
          res,
          method,
          errorResponse(404, 'NOT_FOUND', `no page at ${rawPath}; this worker serves ${known.join(', ')}`),
        )
        return
      }
      label = found.route.route.pattern
      if (found.route.builtin && method !== 'GET' && method !== 'HEAD') {
        status = this.send(res, method, {
          ...errorResponse(405, 'METHOD_NOT_ALLOWED', `${label} answers GET and HEAD only`),
          headers: { allow: 'GET, HEAD' },
        })
        return
      }
      const body = method === 'GET' || method === 'HEAD' ? '' : await readBody(req)
      if (body === undefined) {
        status = this.send(
          res,
          method,
          errorResponse(413, 'BODY_TOO_LARGE', `request bodies are limited to ${MAX_BODY_BYTES} bytes`),
        )
        return
      }
      const request: WebRequest = {
        method,
        path: `/${segments.join('/')}`,
        params: found.params,
        query: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)),
        headers: req.headers,
        body,
      }
      const result = await found.route.handler(request)
      status = this.send(res, method, isWebResponse(result) ? result : { status: 200, body: result })
    } catch (err) {
      status = this.send(res, method, errorFor(err, label))
    } finally {
      this.host.app.sensors.onWebRequest(method, label, status, performance.now() - started)
    }
  }

  /** Writes a response; returns the status actually sent. */
  private send(res: ServerResponse, method: string, response: WebResponse): number {
    if (res.headersSent) {
      // A handler that wrote to the socket itself (there is no API for it, but be safe): leave it.
      return res.statusCode
    }
    let status = response.status ?? 200
    const headers: Record<string, string> = { 'cache-control': 'no-store', ...lowerKeys(response.headers) }
    let payload: string | Buffer
    const body = response.body
    if (typeof body === 'string' || Buffer.isBuffer(body)) {
      payload = body
      headers['content-type'] ??= 'text/plain; charset=utf-8'
    } else if (body instanceof Uint8Array) {
      payload = Buffer.from(body)
      headers['content-type'] ??= 'application/octet-stream'
    } else {
      try {
        payload = toJson(body === undefined ? null : body)
      } catch (err) {
        status = 500
        payload = toJson({
          error: 'NOT_SERIALIZABLE',
          message: `the page returned a value that cannot be JSON-encoded: ${(err as Error)?.message ?? err}`,
        })
      }
      headers['content-type'] = 'application/json; charset=utf-8'
    }
    headers['content-length'] = String(Buffer.byteLength(payload))
    res.writeHead(status, headers)
    res.end(method === 'HEAD' ? undefined : payload)
    return status
  }
}

/** A JSON error body: a stable code and a message saying what went wrong. */
export function errorResponse(status: number, error: string, message: string): WebResponse {
  return { status, body: { error, message } }
}

function errorFor(err: unknown, route: string): WebResponse {
  const message = (err as Error)?.message ?? String(err)
  if (err instanceof MephistoError) {
    const status =
      err.code === 'NOT_READY'
        ? 503
        : err.code === 'PARTITION_OUT_OF_RANGE' ||
            err.code === 'DECODE' ||
            err.code === 'SCHEMA_VALIDATION' ||
            err.code === 'NO_EVENT_CONTEXT'
          ? 400
          : 500
    return errorResponse(status, err.code, message)
  }
  return errorResponse(500, 'PAGE_FAILED', `${route} failed: ${message}`)
}

function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))
}

function lowerKeys(headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(headers ?? {})) out[k.toLowerCase()] = String(v)
  return out
}

/** The body as text, or undefined when it is larger than the limit. */
async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY_BYTES) return undefined
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}
