import { request as httpRequest } from 'node:http'
import { connect } from 'node:net'
import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { App } from '../app/app.js'
import { MephistoError, NotReadyError } from '../base/errors.js'
import type { Logger } from '../base/logger.js'
import type { Sensor } from '../sensors/sensor.js'
import { memoryStore } from '../stores/memoryStore.js'
import type { Store, TableStore } from '../stores/store.js'
import { json } from '../topics/codec.js'
import { MemoryBroker } from '../transport/memory/memoryBroker.js'
import { MemoryTransport } from '../transport/memory/memoryTransport.js'
import { defaultPartition } from '../transport/partitioner.js'
import type { WebRoutes } from './page.js'

interface Hit {
  userId: string
  hits: number
}

const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function hitCounter(
  options: { web?: false | { port?: number; host?: string }; logger?: Logger } = { web: { port: 0 } },
) {
  const app = new App({ id: 'web-hits', logger: 'warn', ...options })
  const hits = app.topic<string, Hit>('hits', { partitions: 2 })
  const counts = app.table<string, number>('counts', { default: () => 0, partitions: 2 })
  const totals = app.table<string, number>('totals', { partitions: 2 })
  const byId = app.table<number, string>('by-id', { key: json<number>(), partitions: 2 })
  const countHits = app.agent(
    hits,
    async (stream) => {
      for await (const hit of stream) {
        counts.set(hit.userId, (await counts.get(hit.userId)) + 1)
        totals.set(hit.userId, ((await totals.has(hit.userId)) ? await totals.get(hit.userId) : 0) + hit.hits)
      }
    },
    { name: 'countHits' },
  )
  return { app, hits, counts, totals, byId, countHits }
}

async function started(app: App): Promise<{ t: TestApp; url: string }> {
  const t = await TestApp.start(app)
  cleanups.push(() => t.stop())
  const url = app.webUrl
  if (!url) throw new Error('the web server is not listening')
  return { t, url }
}

async function getJson(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; body: any; type: string | null }> {
  const res = await fetch(url, init)
  const text = await res.text()
  return {
    status: res.status,
    body: text ? JSON.parse(text) : undefined,
    type: res.headers.get('content-type'),
  }
}

/** A request with a path fetch() would normalise away (raw bytes on the wire). */
function rawGet(base: string, path: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, path, method: 'GET' }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('web server', () => {
  it('is off by default when the app runs on an injected transport (the testkit)', async () => {
    const { app } = hitCounter({})
    const t = await TestApp.start(app)
    cleanups.push(() => t.stop())
    expect(app.webUrl).toBeUndefined()
  })

  it('binds 127.0.0.1 by default and stops listening when the app stops', async () => {
    const { app } = hitCounter()
    const t = await TestApp.start(app)
    const url = app.webUrl
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect((await getJson(`${url}/health`)).status).toBe(200)
    await t.stop()
    expect(app.webUrl).toBeUndefined()
    await expect(fetch(`${url}/health`)).rejects.toThrow()
  })

  it('fails start() with a clear message when the port is taken', async () => {
    const first = hitCounter()
    const { url } = await started(first.app)
    const port = Number(new URL(url).port)
    const second = new App({ id: 'web-other', logger: 'warn', web: { port } })
    await expect(TestApp.start(second)).rejects.toThrow(
      /cannot listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\).*web: \{ port \}/,
    )
    // The first worker is untouched.
    expect((await getJson(`${url}/health`)).status).toBe(200)
  })

  it('/health answers 503 while a long changelog is replayed, then 200', async () => {
    const broker = new MemoryBroker({ name: 'web-recovery' })
    const changelog = 'web-recovering-counts-changelog'
    broker.createTopic({ name: changelog, partitions: 1, compacted: true })
    const records = 5000
    for (let i = 0; i < records; i++) {
      broker.append(changelog, 0, { key: Buffer.from(`user-${i}`), value: Buffer.from(String(i * 2)) })
    }
    // The store holds the first replayed batch until the test has looked at /health, so the
    // window in which the worker is up but not ready is certain, not a race.
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const inner = memoryStore()
    const gated: Store = {
      kind: 'gated-memory',
      async open(spec) {
        const store = await inner.open(spec)
        return {
          ...store,
          getSync: store.getSync,
          get: (p, k) => store.get(p, k),
          getMany: (p, k) => store.getMany(p, k),
          appliedOffset: (p) => store.appliedOffset(p),
          entries: (p) => store.entries(p),
          release: (p) => store.release(p),
          clear: (p) => store.clear(p),
          close: () => store.close(),
          write: async (p, writes, offset) => {
            await gate
            return store.write(p, writes, offset)
          },
        } satisfies TableStore<any>
      },
    }
    const app = new App({ id: 'web-recovering', logger: 'warn', store: gated, web: { port: 0 } })
    const source = app.topic<string, number>('numbers', { partitions: 1 })
    const counts = app.table<string, number>('counts', { partitions: 1 })
    app.agent(source, async (stream) => {
      for await (const _ of stream);
    })
    const starting = app.start({ transport: new MemoryTransport(broker) })
    cleanups.push(async () => {
      release()
      await starting.catch(() => {})
      await app.stop()
    })
    while (app.webUrl === undefined) await new Promise((r) => setTimeout(r, 2))
    const url = app.webUrl
    let before = await getJson(`${url}/health`)
    // Listening comes before recovery starts: wait until the replay has begun.
    while (before.status === 503 && !before.body.recovering) {
      await new Promise((r) => setTimeout(r, 2))
      before = await getJson(`${url}/health`)
    }
    expect(before.status).toBe(503)
    expect(before.body).toMatchObject({
      status: 'starting',
      ready: false,
      recovering: true,
      app: 'web-recovering',
    })
    const progress = (await getJson(`${url}/stats`)).body.recovery
    expect(progress.recovering).toBe(true)
    expect(progress.partitions).toEqual([{ table: 'counts', partition: 0, done: 0, total: records }])
    expect((await getJson(`${url}/tables/counts/user-1`)).status).toBe(503)

    release()
    await starting
    const after = await getJson(`${url}/health`)
    expect(after.status).toBe(200)
    expect(after.body).toMatchObject({ status: 'ok', ready: true, recovering: false })
    expect((await getJson(`${url}/tables/counts/user-4999`)).body).toMatchObject({ found: true, value: 9998 })
    expect(await counts.get('user-1')).toBe(2)
    expect((await getJson(`${url}/stats`)).body.recovery.partitions[0]).toMatchObject({
      done: records,
      total: records,
    })
  })

  it('/stats serves the monitor snapshot, moving with traffic', async () => {
    const h = hitCounter()
    const { t, url } = await started(h.app)
    const before = (await getJson(`${url}/stats`)).body
    expect(before.events.total).toBe(0)
    for (let i = 0; i < 10; i++)
      await t.send(h.hits, { key: `u${i % 3}`, value: { userId: `u${i % 3}`, hits: i } })
    await t.settle()
    await t.commit()
    const res = await getJson(`${url}/stats`)
    expect(res.status).toBe(200)
    expect(res.type).toBe('application/json; charset=utf-8')
    expect(res.body.events.total).toBe(10)
    expect(res.body.events.byStream.countHits.total).toBe(10)
    expect(res.body.messages.receivedByTopic.hits).toBe(10)
    expect(res.body.tables.counts.sets).toBe(10)
    const parts = res.body.partitions.filter((p: { topic: string }) => p.topic === 'hits')
    expect(parts.reduce((n: number, p: { end: number }) => n + p.end, 0)).toBe(10)
    expect(parts.every((p: { lag: number }) => p.lag === 0)).toBe(true)
  })

  it('/tables/:name/:key reads a key, with defaults, ?partition= and clear 4xx for bad input', async () => {
    const h = hitCounter()
    const { t, url } = await started(h.app)
    await t.send(h.hits, { key: 'alice', value: { userId: 'alice', hits: 7 } })
    await t.send(h.hits, { key: 'alice', value: { userId: 'alice', hits: 5 } })
    await t.settle()

    const alicePartition = defaultPartition(Buffer.from('alice'), 2)
    expect((await getJson(`${url}/tables/counts/alice`)).body).toEqual({
      table: 'counts',
      key: 'alice',
      partition: alicePartition,
      found: true,
      value: 2,
    })
    expect((await getJson(`${url}/tables/totals/alice?partition=${alicePartition}`)).body.value).toBe(12)
    // Absent, with a default: 200 with the default. Absent without one: 404.
    expect((await getJson(`${url}/tables/counts/bob`)).body).toMatchObject({ found: false, value: 0 })
    const missing = await getJson(`${url}/tables/totals/bob`)
    expect(missing.status).toBe(404)
    expect(missing.body).toMatchObject({ error: 'NO_SUCH_KEY' })
    // Keys are URL-decoded.
    await t.send(h.hits, { key: 'a b/c', value: { userId: 'a b/c', hits: 1 } })
    await t.settle()
    expect((await getJson(`${url}/tables/counts/${encodeURIComponent('a b/c')}`)).body.value).toBe(1)

    const cases: [string, number, string][] = [
      ['/tables/nope/alice', 404, 'NO_SUCH_TABLE'],
      ['/tables/counts/alice?partition=9', 400, 'BAD_PARTITION'],
      ['/tables/counts/alice?partition=-1', 400, 'BAD_PARTITION'],
      ['/tables/counts/alice?partition=one', 400, 'BAD_PARTITION'],
      ['/tables/by-id/not-json', 400, 'BAD_KEY'],
    ]
    for (const [path, status, code] of cases) {
      const res = await getJson(`${url}${path}`)
      expect({ path, status: res.status, code: res.body.error }).toEqual({ path, status, code })
      expect(res.body.message).toEqual(expect.any(String))
    }
    // A json-keyed table decodes the key from the path.
    expect((await getJson(`${url}/tables/by-id/42`)).status).toBe(404)

    const list = (await getJson(`${url}/tables`)).body
    expect(list.map((x: { name: string }) => x.name)).toEqual(['counts', 'totals', 'by-id'])
    expect(list[0]).toMatchObject({ partitions: 2, changelog: 'web-hits-counts-changelog', owned: [0, 1] })
    expect((await getJson(`${url}/tables/counts`)).body.stats.sets).toBe(3)
  })

  it('answers bad paths with 4xx JSON and keeps serving', async () => {
    const h = hitCounter()
    const { url } = await started(h.app)
    const notFound = await getJson(`${url}/nothing/here`)
    expect(notFound.status).toBe(404)
    expect(notFound.body.error).toBe('NOT_FOUND')
    expect(notFound.body.message).toContain('/health')

    const badEncoding = await rawGet(url, '/tables/counts/%E0%A4%A')
    expect(badEncoding.status).toBe(400)
    expect(JSON.parse(badEncoding.body).error).toBe('BAD_PATH')

    const post = await getJson(`${url}/stats`, { method: 'POST', body: '{}' })
    expect(post.status).toBe(405)

    const head = await fetch(`${url}/stats`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(await head.text()).toBe('')

    // Junk on the wire is answered, not thrown.
    const garbage = await new Promise<string>((resolve, reject) => {
      const { hostname, port } = new URL(url)
      import('node:net').then(({ connect }) => {
        const socket = connect(Number(port), hostname, () => socket.write('NOT HTTP AT ALL\r\n\r\n'))
        let data = ''
        socket.on('data', (d) => (data += d.toString()))
        socket.on('end', () => resolve(data))
        socket.on('error', reject)
      }, reject)
    })
    expect(garbage).toContain('400')
    expect((await getJson(`${url}/health`)).status).toBe(200)
  })

  it('/agents and /topics describe the app', async () => {
    const h = hitCounter()
    const { t, url } = await started(h.app)
    await t.send(h.hits, { key: 'u1', value: { userId: 'u1', hits: 1 } })
    await t.settle()
    const agents = (await getJson(`${url}/agents`)).body
    expect(agents).toEqual([
      {
        name: 'countHits',
        source: 'hits',
        sourceKind: 'topic',
        concurrency: 1,
        onError: 'dlq',
        dlqTopic: 'web-hits-hits-dlq',
        queued: 0,
        oldestEventAgeMs: 0,
        eventTimeoutMs: null,
        events: expect.objectContaining({ total: 1, active: 0 }),
      },
    ])
    const topics = (await getJson(`${url}/topics`)).body
    expect(topics).toContainEqual({
      name: 'hits',
      role: 'topic',
      partitions: 2,
      assigned: [0, 1],
      received: 1,
      sent: 1,
    })
    expect(topics.map((x: { role: string }) => x.role).sort()).toEqual([
      'changelog',
      'changelog',
      'changelog',
      'dlq',
      'topic',
    ])
  })

  it('serves custom pages: params, JSON, full responses, failures', async () => {
    const h = hitCounter({ web: { port: 0 }, logger: recordingLogger().logger })
    h.app.page('/counts/:user', async (req) => ({
      user: req.params.user,
      count: await h.counts.get(req.params.user ?? ''),
    }))
    h.app.page('/plain', () => ({ status: 201, headers: { 'X-Thing': 'yes' }, body: 'made' }))
    h.app.page('/echo', (req) => ({ method: req.method, body: req.body, q: req.query.get('q') }))
    h.app.page('/boom', () => {
      throw new Error('page exploded')
    })
    h.app.page('/big', () => ({ n: 10n }))
    expect(() => h.app.page('/stats/mine', () => 1)).toThrow(/reserved/)
    expect(() => h.app.page('no-slash', () => 1)).toThrow(/must start with '\/'/)
    expect(() => h.app.page('/counts/:user', () => 1)).toThrow(/already declared/)

    const { t, url } = await started(h.app)
    await t.send(h.hits, { key: 'carol', value: { userId: 'carol', hits: 1 } })
    await t.settle()
    expect((await getJson(`${url}/counts/carol`)).body).toEqual({ user: 'carol', count: 1 })
    const plain = await fetch(`${url}/plain`)
    expect(plain.status).toBe(201)
    expect(plain.headers.get('x-thing')).toBe('yes')
    expect(await plain.text()).toBe('made')
    expect((await getJson(`${url}/echo?q=1`, { method: 'POST', body: 'hello' })).body).toEqual({
      method: 'POST',
      body: 'hello',
      q: '1',
    })
    expect((await getJson(`${url}/boom`)).status).toBe(500)
    expect((await getJson(`${url}/big`)).body).toEqual({ n: '10' })
    expect((await getJson(`${url}/health`)).status).toBe(200)
  })

  it("mounts sensors' web routes and reports every request to onWebRequest", async () => {
    const h = hitCounter()
    const seen: [string, string, number][] = []
    const sensor: Sensor & WebRoutes = {
      onWebRequest: (method, path, status) => void seen.push([method, path, status]),
      webRoutes: () => ({ '/hello/:name': (req) => ({ status: 200, body: `hello ${req.params.name}` }) }),
    }
    h.app.sensors.add(sensor)
    const { url } = await started(h.app)
    expect(await (await fetch(`${url}/hello/world`)).text()).toBe('hello world')
    await fetch(`${url}/tables/counts/x`)
    await fetch(`${url}/missing`)
    expect(seen).toEqual([
      ['GET', '/hello/:name', 200],
      ['GET', '/tables/:name/:key', 200],
      ['GET', '/*', 404],
    ])
    expect(h.app.monitor.snapshot().web).toMatchObject({ total: 3, byStatus: { '200': 2, '404': 1 } })
  })

  it('serves the dashboard page at /', async () => {
    const h = hitCounter()
    const { url } = await started(h.app)
    const res = await fetch(`${url}/`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8')
    const html = await res.text()
    expect(html).toContain('<canvas id="chart"')
    expect(html).toContain('"web-hits"')
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=/)
  })
})

/** Log lines, kept for the test to read. */
function recordingLogger(): { logger: Logger; errors: { msg: string; fields?: Record<string, unknown> }[] } {
  const errors: { msg: string; fields?: Record<string, unknown> }[] = []
  const ignore = (): void => {}
  return {
    logger: {
      debug: ignore,
      info: ignore,
      warn: ignore,
      error: (msg, fields) => void errors.push({ msg, ...(fields && { fields }) }),
    },
    errors,
  }
}

/**
 * Writes `text` on one raw socket and collects what comes back until the server closes the
 * socket, or `waitMs` passes (then `closed` is false: the socket hung).
 */
function exchange(url: string, text: string, waitMs: number): Promise<{ data: string; closed: boolean }> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    let data = ''
    const socket = connect(Number(port), hostname, () => socket.write(text))
    const timer = setTimeout(() => {
      socket.destroy()
      resolve({ data, closed: false })
    }, waitMs)
    socket.on('data', (d) => (data += d.toString()))
    // A reset after the answer (the server closing with the rest of our body unread) is a close too.
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ data, closed: true })
    })
  })
}

describe('web server failure paths', () => {
  it('answers a failing page or sensor route with a generic 500 and logs the error with its request id', async () => {
    const { logger, errors } = recordingLogger()
    const h = hitCounter({ web: { port: 0 }, logger })
    h.app.page('/boom', () => {
      throw new Error('cannot connect: password=hunter2')
    })
    h.app.page('/ours', () => {
      throw new MephistoError('BROKER', 'broker at user:hunter2@kafka refused')
    })
    h.app.page('/cycle', () => {
      const secret: Record<string, unknown> = { password: 'hunter2' }
      secret.self = secret
      return secret
    })
    const failing: Sensor & WebRoutes = {
      webRoutes: () => ({
        '/metrics': () => {
          throw new Error('registry broke: token=hunter2')
        },
      }),
    }
    h.app.sensors.add(failing)
    const { url } = await started(h.app)
    for (const path of ['/boom', '/ours', '/cycle', '/metrics']) {
      const res = await fetch(`${url}${path}`)
      const text = await res.text()
      expect({ path, status: res.status }).toEqual({ path, status: 500 })
      expect(text).not.toContain('hunter2')
      const body = JSON.parse(text)
      expect(body).toEqual({
        error: 'INTERNAL',
        message: `the page failed; see the worker log (request ${body.requestId})`,
        requestId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      })
      expect(res.headers.get('x-request-id')).toBe(body.requestId)
      const logged = errors.find((e) => e.fields?.requestId === body.requestId)
      expect(logged?.msg).toContain(path)
      expect(logged?.fields?.route).toBe(path)
    }
    expect(String((errors[0]?.fields?.err as Error | undefined)?.message)).toContain('password=hunter2')
    expect((await getJson(`${url}/health`)).status).toBe(200)
  })

  it('keeps answering our own client errors as before: NOT_READY is 503 with its message', async () => {
    const { logger, errors } = recordingLogger()
    const h = hitCounter({ web: { port: 0 }, logger })
    h.app.page('/later', () => {
      throw new NotReadyError('table counts is recovering; try again')
    })
    const { url } = await started(h.app)
    const res = await getJson(`${url}/later`)
    expect(res).toMatchObject({
      status: 503,
      body: { error: 'NOT_READY', message: 'table counts is recovering; try again' },
    })
    expect(errors).toEqual([])
  })

  it('answers a too-large body with 413 and Connection: close, and closes the socket', async () => {
    const h = hitCounter()
    h.app.page('/echo', (req) => ({ size: req.body.length }))
    const { url } = await started(h.app)
    const size = (1 << 20) + 1024
    const first = `POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${size}\r\n\r\n${'x'.repeat(size)}`
    const second = 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
    // Told by Content-Length, and found while reading a chunked body that has none.
    const chunked = `POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n${size.toString(16)}\r\n${'x'.repeat(size)}\r\n0\r\n\r\n`
    for (const tooLarge of [first, chunked]) {
      const { data, closed } = await exchange(url, tooLarge + second, 3000)
      expect(data).toMatch(/^HTTP\/1\.1 413 /)
      expect(data.toLowerCase()).toContain('connection: close')
      // Closed, so the client sends the second request on a new connection instead of hanging.
      expect(closed).toBe(true)
    }
    expect((await getJson(`${url}/health`)).status).toBe(200)
  })

  it("answers 405 to other methods than GET and HEAD on sensors' routes; custom pages take every method", async () => {
    const h = hitCounter()
    const metrics: Sensor & WebRoutes = { webRoutes: () => ({ '/metrics': () => 'm 1\n' }) }
    h.app.sensors.add(metrics)
    h.app.page('/echo', (req) => ({ method: req.method }))
    const { url } = await started(h.app)
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const res = await fetch(`${url}/metrics`, { method })
      expect({ method, status: res.status, allow: res.headers.get('allow') }).toEqual({
        method,
        status: 405,
        allow: 'GET, HEAD',
      })
      expect((await getJson(`${url}/health`, { method })).status).toBe(405)
      expect((await getJson(`${url}/echo`, { method })).body).toEqual({ method })
    }
    expect(await (await fetch(`${url}/metrics`)).text()).toBe('m 1\n')
    expect((await fetch(`${url}/metrics`, { method: 'HEAD' })).status).toBe(200)
  })
})
