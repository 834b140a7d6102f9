import { randomUUID } from 'node:crypto'
import type { IncomingMessage, OutgoingHttpHeaders, Server, ServerResponse } from 'node:http'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { ConfigurationError, MephistoError } from '../base/errors.js'
import { HostAllowList, isLoopbackHost, TokenCheck, validateAccessOptions } from './access.js'
import { advertisedUrlOf, checkAdvertisedUrl } from './advertise.js'
import { builtinRoutes } from './builtinRoutes.js'
import { Forwarder, WORKER_HEADER } from './forwarding.js'
import type { PageHandler, WebOptions, WebRequest, WebResponse } from './page.js'
import { hasWebRoutes, isWebResponse } from './page.js'
import { GONE, MAX_BODY_BYTES, readBody, TOO_LARGE } from './requestBody.js'
import type { RoutePattern } from './route.js'
import { matchRoute, parseRoute, splitPath } from './route.js'
import type { WebHost, WebRouter } from './webHost.js'

/**
 * A route: a pattern, its handler, whether it is one of the built-in pages, and the methods it
 * answers (others get 405); undefined for the app's pages, whose handler sees every method.
 */
export interface WebRoute {
  route: RoutePattern
  handler: PageHandler
  builtin: boolean
  methods: readonly string[] | undefined
}

/** A response as the server writes it: a header may repeat (`www-authenticate`). */
type Answer = Omit<WebResponse, 'headers'> & { headers?: OutgoingHttpHeaders }

/** The methods of the built-in pages and of sensors' routes: they only read. */
const READ_METHODS: readonly string[] = ['GET', 'HEAD']

/** The one path open without the token: platforms probe it and it tells only the app's state. */
const OPEN_ROUTE = '/health'

export const DEFAULT_WEB_PORT = 6066
export const DEFAULT_WEB_HOST = '127.0.0.1'
/** The status reported to the sensors when the client left before its body was read (nginx's). */
const CLIENT_GONE = 499

/** The route label of requests no route matched: one label, however many paths are probed. */
export const UNMATCHED_ROUTE = '/*'

/**
 * The worker's HTTP server on `node:http`: built-in pages (`/`, `/health`, `/stats`, `/agents`,
 * `/topics`, `/tables...`), routes of sensors implementing `WebRoutes` (`/metrics`), and the app's
 * custom pages. Every request is answered: a Host not allowed 403, a missing token 401, bad paths
 * 4xx JSON, a failing handler a generic 500 (its error goes to the app's log, not to the client);
 * the worker never crashes because of a request. Each request is reported to the sensors'
 * `onWebRequest` with the matched route pattern (not the raw path) so metric labels stay bounded.
 */
export class WebServer {
  private readonly server: Server
  private readonly builtins: WebRoute[]
  private readonly hosts: HostAllowList
  private readonly token: TokenCheck | undefined
  private readonly forwarder: Forwarder
  private readonly advertised: URL | undefined
  private bound: string | undefined
  private advertisedAt: string | undefined

  constructor(
    private readonly host: WebHost,
    private readonly options: WebOptions = {},
    /** The worker's route book: requests for keys other workers own are forwarded to them. */
    router?: WebRouter,
  ) {
    this.forwarder = new Forwarder(host, router, options)
    this.builtins = Object.entries(builtinRoutes(host, options, this.forwarder)).map(
      ([pattern, handler]) => ({
        route: parseRoute(pattern),
        handler,
        builtin: true,
        methods: READ_METHODS,
      }),
    )
    validateAccessOptions(options)
    this.advertised = checkAdvertisedUrl(options.advertisedUrl)
    // Peers forward to the advertised name: it names this server.
    const advertisedHost = this.advertised ? [this.advertised.hostname] : []
    this.hosts = new HostAllowList(options.host ?? DEFAULT_WEB_HOST, [
      ...(options.allowedHosts ?? []),
      ...advertisedHost,
    ])
    this.token = options.token === undefined ? undefined : new TokenCheck(options.token)
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

  /** Where the app's other workers reach this server (`web.advertisedUrl`, or derived), once listening. */
  get advertisedUrl(): string | undefined {
    return this.advertisedAt
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
    this.advertisedAt = advertisedUrlOf(this.advertised, address.address, address.port)
    this.warnIfOpen(host)
    return this.bound
  }

  /** Says so in the log when anyone able to reach the server, or a web page, can read it. */
  private warnIfOpen(host: string): void {
    if (this.token) return
    const logger = this.host.app.logger
    if (!isLoopbackHost(host)) {
      logger.warn(
        `the web server listens on ${this.bound}, reachable from other machines, without a token: ` +
          `anyone who reaches it reads /stats, the tables and the custom pages. Set web.token ` +
          `(the CLI reads MEPHISTO_WEB_TOKEN), or bind 127.0.0.1`,
      )
    }
    if (this.hosts.allowsAny) {
      logger.warn(
        `web.allowedHosts allows any host and there is no web.token: a web page can read this ` +
          `server through DNS rebinding. Name the hosts, or set web.token`,
      )
    }
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
        routes.push({ route: parseRoute(pattern), handler, builtin: false, methods: READ_METHODS })
      }
    }
    for (const page of this.host.app.pages)
      routes.push({
        route: page.route,
        handler: this.forwarder.page(page),
        builtin: false,
        methods: undefined,
      })
    return routes
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now()
    const method = (req.method ?? 'GET').toUpperCase()
    const socket = req.socket as IncomingMessage['socket'] | null
    let label = UNMATCHED_ROUTE
    let status = 500
    try {
      // Before anything else: a browser tricked by DNS rebinding names the attacker's host here.
      if (!this.hosts.allows(req.headers.host)) {
        status = this.send(
          res,
          method,
          errorResponse(
            403,
            'HOST_NOT_ALLOWED',
            `this server does not answer for the host ${JSON.stringify(req.headers.host)}; ` +
              `add it to the worker's web.allowedHosts`,
          ),
        )
        return
      }
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
      const routes = this.routes()
      let found: { route: WebRoute; params: Record<string, string> } | undefined
      for (const route of routes) {
        const params = matchRoute(route.route, segments)
        if (params) {
          found = { route, params }
          break
        }
      }
      if (found) label = found.route.route.pattern
      const open = found?.route.builtin === true && label === OPEN_ROUTE
      if (this.token && !open && !this.token.allows(req.headers.authorization, method)) {
        status = this.send(res, method, {
          ...errorResponse(
            401,
            'UNAUTHORIZED',
            "this server needs Authorization: Bearer <token>, the worker's web.token",
          ),
          headers: { 'www-authenticate': TokenCheck.challenges() },
        })
        return
      }
      if (!found) {
        const known = routes.map((r) => r.route.pattern)
        status = this.send(
          res,
          method,
          errorResponse(404, 'NOT_FOUND', `no page at ${rawPath}; this worker serves ${known.join(', ')}`),
        )
        return
      }
      const methods = found.route.methods
      if (methods && !methods.includes(method)) {
        status = this.send(res, method, {
          ...errorResponse(405, 'METHOD_NOT_ALLOWED', `${label} answers ${methods.join(' and ')} only`),
          headers: { allow: methods.join(', ') },
        })
        return
      }
      const body = method === 'GET' || method === 'HEAD' ? '' : await readBody(req)
      if (body === GONE) {
        status = CLIENT_GONE
        return
      }
      if (body === TOO_LARGE) {
        // The rest of the body is unread: the socket cannot carry another request. Say so, and
        // close it once the answer is out, so the client's next request goes to a new connection.
        status = this.send(res, method, {
          ...errorResponse(413, 'BODY_TOO_LARGE', `request bodies are limited to ${MAX_BODY_BYTES} bytes`),
          headers: { connection: 'close' },
        })
        res.once('finish', () => socket?.destroy())
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
      status = this.send(res, method, isWebResponse(result) ? result : { status: 200, body: result }, label)
    } catch (err) {
      status = this.send(res, method, this.failure(err, method, label))
    } finally {
      this.host.app.sensors.onWebRequest(method, label, status, performance.now() - started)
    }
  }

  /**
   * The answer to a handler that threw. Our own errors that say what the client can do (not
   * ready, bad input) keep their status and message; anything else is the page's business and
   * may hold secrets: logged with a request id, answered with a generic 500 naming that id.
   */
  private failure(err: unknown, method: string, route: string, what = 'failed'): Answer {
    if (err instanceof MephistoError) {
      const status = CLIENT_STATUS[err.code]
      if (status !== undefined) return errorResponse(status, err.code, err.message)
    }
    const requestId = randomUUID()
    try {
      this.host.app.logger.error(`web: ${method} ${route} ${what} (request ${requestId})`, {
        err,
        requestId,
        method,
        route,
      })
    } catch {
      // A logger that throws must not turn a 500 into a dropped connection.
    }
    return {
      status: 500,
      headers: { 'x-request-id': requestId },
      body: {
        error: 'INTERNAL',
        message: `the page failed; see the worker log (request ${requestId})`,
        requestId,
      },
    }
  }

  /** Writes a response; returns the status actually sent. */
  private send(res: ServerResponse, method: string, response: Answer, route = UNMATCHED_ROUTE): number {
    if (res.headersSent) {
      // A handler that wrote to the socket itself (there is no API for it, but be safe): leave it.
      return res.statusCode
    }
    let status = response.status ?? 200
    let headers: OutgoingHttpHeaders = { 'cache-control': 'no-store', ...lowerKeys(response.headers) }
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
        const failed = this.failure(err, method, route, 'returned a value that cannot be JSON-encoded')
        status = failed.status ?? 500
        headers = { 'cache-control': 'no-store', ...failed.headers }
        payload = toJson(failed.body)
      }
      headers['content-type'] = 'application/json; charset=utf-8'
    }
    if (this.forwarder.workerId !== undefined) headers[WORKER_HEADER] ??= this.forwarder.workerId
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

/** MephistoError codes whose message is ours and tells the client what to do, with their status. */
const CLIENT_STATUS: Readonly<Record<string, number>> = {
  NOT_READY: 503,
  PARTITION_OUT_OF_RANGE: 400,
  DECODE: 400,
  SCHEMA_VALIDATION: 400,
  NO_EVENT_CONTEXT: 400,
}

function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))
}

function lowerKeys(headers: OutgoingHttpHeaders | undefined): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {}
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.map(String) : String(v)
  }
  return out
}
