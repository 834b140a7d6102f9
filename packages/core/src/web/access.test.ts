import { request as httpRequest } from 'node:http'
import { connect } from 'node:net'
import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { App } from '../app/app.js'
import type { Logger } from '../base/logger.js'
import type { ParsedArgs } from '../cli/args.js'
import { webOverrides } from '../cli/workerCommand.js'
import type { Sensor } from '../sensors/sensor.js'
import { HostAllowList, hostName, isLoopbackHost, TokenCheck } from './access.js'
import type { WebOptions, WebRoutes } from './page.js'

const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

interface Logged {
  level: string
  msg: string
  fields: Record<string, unknown> | undefined
}

function recordingLogger(): { logger: Logger; lines: Logged[] } {
  const lines: Logged[] = []
  const at =
    (level: string) =>
    (msg: string, fields?: Record<string, unknown>): void =>
      void lines.push({ level, msg, fields })
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines }
}

async function serving(web: WebOptions, logger?: Logger): Promise<{ app: App; url: string }> {
  const app = new App({ id: 'web-access', logger: logger ?? 'silent', web: { port: 0, ...web } })
  app.page('/echo', (req) => ({ method: req.method, body: req.body }))
  const sensor: Sensor & WebRoutes = { webRoutes: () => ({ '/metrics': () => 'm 1\n' }) }
  app.sensors.add(sensor)
  const t = await TestApp.start(app)
  cleanups.push(() => t.stop())
  const url = app.webUrl
  if (!url) throw new Error('the web server is not listening')
  return { app, url }
}

interface Answer {
  status: number
  /** Each header's values, a repeated header as several (`www-authenticate`). */
  headers: Record<string, string[] | undefined>
  body: any
}

/** A request with exactly the headers given (fetch() would set Host itself). */
function ask(
  url: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: hostname, port, path, method: options.method ?? 'GET', headers: options.headers, agent: false },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => (text += c))
        res.on('end', () => {
          let body: unknown = text
          try {
            body = text ? JSON.parse(text) : undefined
          } catch {}
          resolve({ status: res.statusCode ?? 0, headers: res.headersDistinct, body })
        })
      },
    )
    req.on('error', reject)
    req.end(options.body)
  })
}

/** One request written as raw bytes, for what http.request cannot send (no Host header at all). */
function rawRequest(url: string, text: string): Promise<string> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(text))
    let data = ''
    socket.on('data', (d) => (data += d.toString()))
    socket.on('end', () => resolve(data))
    socket.on('error', reject)
  })
}

const basic = (user: string, password: string): string =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

describe('web access: the Host allow-list', () => {
  it('answers 403 HOST_NOT_ALLOWED to a name it does not serve (DNS rebinding), on every path', async () => {
    const { url } = await serving({})
    const port = new URL(url).port
    for (const path of ['/stats', '/tables/counts/x', '/health', '/nothing', '/echo']) {
      const res = await ask(url, path, { headers: { host: `rebind.attacker.example:${port}` } })
      expect({ path, status: res.status, error: res.body?.error }).toEqual({
        path,
        status: 403,
        error: 'HOST_NOT_ALLOWED',
      })
      expect(res.body.message).toContain('web.allowedHosts')
    }
  })

  it('serves loopback names with any port, IP addresses, and the names in allowedHosts', async () => {
    const { url } = await serving({ allowedHosts: ['worker:6066', '.svc.example', 'Dash.Example.'] })
    const port = new URL(url).port
    const allowed = [
      `localhost:${port}`,
      'localhost',
      'LOCALHOST.:80',
      `127.0.0.1:${port}`,
      `[::1]:${port}`,
      '10.1.2.3:6066',
      `worker:${port}`,
      'svc.example',
      'api.svc.example:443',
      'dash.example',
    ]
    for (const host of allowed) {
      expect({ host, status: (await ask(url, '/stats', { headers: { host } })).status }).toEqual({
        host,
        status: 200,
      })
    }
    for (const host of ['workers', 'evil-svc.example', 'localhost.attacker.example', 'a:b:c']) {
      expect({ host, status: (await ask(url, '/stats', { headers: { host } })).status }).toEqual({
        host,
        status: 403,
      })
    }
  })

  it("'*' allows any name, and the bound host is allowed when it is a name", async () => {
    const any = await serving({ allowedHosts: ['*'] })
    expect((await ask(any.url, '/stats', { headers: { host: 'anything.example' } })).status).toBe(200)
    const named = await serving({ host: 'localhost' })
    expect(new HostAllowList('worker.internal').allows('worker.internal:6066')).toBe(true)
    expect(new HostAllowList('0.0.0.0').allows('0.0.0.0.attacker.example')).toBe(false)
    expect((await ask(named.url, '/stats', { headers: { host: 'other.example' } })).status).toBe(403)
  })

  it('lets an HTTP/1.0 request without a Host header through (no browser sends one)', async () => {
    const { url } = await serving({})
    const answer = await rawRequest(url, 'GET /health HTTP/1.0\r\n\r\n')
    expect(answer).toMatch(/^HTTP\/1\.1 200/)
  })

  it('parses Host headers strictly', () => {
    expect(hostName('Example.COM.:8080')).toBe('example.com')
    expect(hostName('[::1]:6066')).toBe('::1')
    expect(hostName('[::1')).toBeUndefined()
    expect(hostName('a:b')).toBeUndefined()
    expect(hostName(':80')).toBeUndefined()
    expect(isLoopbackHost('127.0.0.1')).toBe(true)
    expect(isLoopbackHost('::1')).toBe(true)
    expect(isLoopbackHost('localhost')).toBe(true)
    expect(isLoopbackHost('0.0.0.0')).toBe(false)
    expect(isLoopbackHost('::')).toBe(false)
    expect(isLoopbackHost('worker.internal')).toBe(false)
  })
})

describe('web access: the bearer token', () => {
  const token = 's3cret-token'

  it('answers 401 without the token, on every path but /health', async () => {
    const { url } = await serving({ token })
    for (const path of ['/', '/stats', '/tables', '/tables/counts/x', '/metrics', '/echo', '/nothing']) {
      const res = await ask(url, path)
      expect({ path, status: res.status, error: res.body?.error }).toEqual({
        path,
        status: 401,
        error: 'UNAUTHORIZED',
      })
      expect(res.headers['www-authenticate']).toEqual([
        'Bearer realm="mephisto"',
        'Basic realm="mephisto", charset="UTF-8"',
      ])
    }
    for (const authorization of [`Bearer ${token}x`, `Bearer ${token.slice(0, -1)}`, 'Bearer', token]) {
      expect((await ask(url, '/stats', { headers: { authorization } })).status).toBe(401)
    }
    const health = await ask(url, '/health')
    expect(health.status).toBe(200)
    expect(health.body).toMatchObject({ status: 'ok', ready: true })
  })

  it('serves every page with the token; Basic (the browser prompt) for GET and HEAD only', async () => {
    const { url } = await serving({ token })
    const bearer = { authorization: `Bearer ${token}` }
    expect((await ask(url, '/stats', { headers: bearer })).status).toBe(200)
    const metrics = await ask(url, '/metrics', { headers: { authorization: `bearer ${token}` } })
    expect(metrics.body).toBe('m 1\n')
    expect((await ask(url, '/echo', { method: 'POST', headers: bearer, body: 'hi' })).body).toEqual({
      method: 'POST',
      body: 'hi',
    })
    const browser = { authorization: basic('anyone', token) }
    expect((await ask(url, '/', { headers: browser })).status).toBe(200)
    expect((await ask(url, '/stats', { headers: browser })).status).toBe(200)
    expect((await ask(url, '/stats', { headers: { authorization: basic('anyone', 'guess') } })).status).toBe(
      401,
    )
    // A credential a browser re-sends on its own does not carry a POST to a custom page.
    expect((await ask(url, '/echo', { method: 'POST', headers: browser, body: 'hi' })).status).toBe(401)
  })

  it('compares in constant time over hashes: any length, no prefix match', () => {
    const check = new TokenCheck('abc')
    expect(check.allows('Bearer abc', 'POST')).toBe(true)
    expect(check.allows('Bearer ab', 'GET')).toBe(false)
    expect(check.allows('Bearer abcd', 'GET')).toBe(false)
    expect(check.allows('Basic !!!', 'GET')).toBe(false)
    expect(check.allows('Digest abc', 'GET')).toBe(false)
    expect(check.allows(undefined, 'GET')).toBe(false)
  })

  it('refuses a token or allowedHosts it cannot use, naming the option', async () => {
    for (const web of [
      { token: '' },
      { token: 'has space' },
      { allowedHosts: 'worker' as unknown as string[] },
    ]) {
      const app = new App({ id: 'web-access-bad', logger: 'silent', web: { port: 0, ...web } })
      await expect(TestApp.start(app)).rejects.toThrow(/web\.(token|allowedHosts)/)
    }
  })
})

describe('web access: the warning at listen', () => {
  it('warns when the server is reachable from other machines without a token', async () => {
    const open = recordingLogger()
    await serving({ host: '0.0.0.0' }, open.logger)
    const warnings = open.lines.filter((l) => l.level === 'warn').map((l) => l.msg)
    expect(warnings).toEqual([
      expect.stringMatching(/reachable from other machines, without a token.*web\.token/),
    ])

    const guarded = recordingLogger()
    await serving({ host: '0.0.0.0', token: 'x' }, guarded.logger)
    const loopback = recordingLogger()
    await serving({}, loopback.logger)
    expect([...guarded.lines, ...loopback.lines].filter((l) => l.level === 'warn')).toEqual([])

    const anyHost = recordingLogger()
    await serving({ allowedHosts: ['*'] }, anyHost.logger)
    expect(anyHost.lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual([
      expect.stringMatching(/DNS rebinding/),
    ])
  })
})

describe('web access: the CLI reads the token and host names from the environment', () => {
  const argv = (options: ParsedArgs['options']): ParsedArgs => ({ options }) as unknown as ParsedArgs

  it('MEPHISTO_WEB_TOKEN and MEPHISTO_WEB_ALLOWED_HOSTS join the web flags', () => {
    const env = { MEPHISTO_WEB_TOKEN: ' t0ken ', MEPHISTO_WEB_ALLOWED_HOSTS: 'worker, localhost.,' }
    expect(webOverrides(argv({ 'web-host': '0.0.0.0' }), env)).toEqual({
      host: '0.0.0.0',
      token: 't0ken',
      allowedHosts: ['worker', 'localhost.'],
    })
    expect(webOverrides(argv({}), { MEPHISTO_WEB_TOKEN: 't' })).toEqual({ token: 't' })
    expect(webOverrides(argv({}), { MEPHISTO_WEB_TOKEN: '' })).toBeUndefined()
    expect(webOverrides(argv({ 'without-web': true }), env)).toBe(false)
  })
})
