// Any key from any worker (issue 15, item 1), on the testkit: several workers of one app share a
// memory broker and a fake clock, each with its own web server. A table read, a routed custom
// page and an ask() give the same answer whichever worker is asked; the worker that answered is
// named in x-mephisto-worker; a key whose owner is unknown or does not answer is a 503.
import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import type { WebOptions } from '../src/index.js'
import { App } from '../src/index.js'
import { gate } from './helpers.js'

const PARTITIONS = 6
const KEYS = Array.from({ length: 36 }, (_, i) => `user-${i}`)

function worker(web: false | WebOptions = { port: 0 }, id = 'routing') {
  const app = new App({ id, logger: 'silent', commitIntervalMs: 100, web })
  const input = app.topic<string, number>('input', { partitions: PARTITIONS })
  const counts = app.table<string, number>('counts', { default: () => 0, partitions: PARTITIONS })
  // A negative count holds the agent until released: an ask nobody answers in time.
  const hold = gate()
  const count = app.agent(
    input,
    async function* (stream) {
      for await (const [user, n] of stream.items()) {
        if (n < 0) await hold.promise
        const total = (await counts.get(user)) + n
        counts.set(user, total)
        yield total
      }
    },
    { name: 'count' },
  )
  app.page(
    '/users/:user',
    async (req) => ({ user: req.params.user, count: await counts.get(req.params.user!) }),
    {
      routeBy: { table: counts, param: 'user' },
    },
  )
  app.page('/inputs/:key', (req) => ({ key: req.params.key }), { routeBy: { topic: input, param: 'key' } })
  let hang = false
  app.page(
    '/slow/:user',
    async () => {
      if (hang) await new Promise(() => {})
      return { ok: true }
    },
    { routeBy: { table: counts, param: 'user' } },
  )
  return { app, input, counts, count, hangPages: () => void (hang = true), release: () => hold.open() }
}
type Worker = ReturnType<typeof worker>

let running: TestApp[] = []
afterEach(async () => {
  for (const t of running) if (t.app.running) await t.stop()
  running = []
})

async function startAll(ws: Worker[]): Promise<TestApp[]> {
  const first = await TestApp.start(ws[0]!.app)
  running = [first]
  for (const w of ws.slice(1))
    running.push(await TestApp.start(w.app, { broker: first.broker, clock: first.clock }))
  for (const t of running) await t.settle()
  return running
}

/** The worker whose group assignment holds the key's partition of `input`. */
function ownerOf(ws: Worker[], key: string): Worker {
  const p = ws[0]!.counts.hashPartition(key)
  const owner = ws.find((w) => w.app.running && w.app.worker!.assignment().some((tp) => tp.partition === p))
  if (!owner) throw new Error(`nobody owns partition ${p}`)
  return owner
}

interface Answer {
  status: number
  body: any
  worker: string | null
}

async function get(url: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(url, { headers })
  const text = await res.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {}
  return { status: res.status, body, worker: res.headers.get('x-mephisto-worker') }
}

/** Polls until `fn` holds (route books follow the routes topic a few times a second). */
async function eventually(what: string, fn: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Rejects when `promise` takes longer than `ms` of real time (the fake clock never times an ask out). */
function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)),
  ])
}

async function sendCounts(t: TestApp, w: Worker): Promise<Map<string, number>> {
  const want = new Map<string, number>()
  for (const [i, k] of KEYS.entries()) want.set(k, i + 1)
  for (const [k, n] of want) await t.send(w.input, { key: k, value: n })
  for (const r of running) await r.settle()
  return want
}

describe('any key from any worker', () => {
  it('GET /tables/:name/:key on each of three workers gives every key, named by the worker that answered', async () => {
    const ws = [worker(), worker(), worker()]
    const ts = await startAll(ws)
    const want = await sendCounts(ts[0]!, ws[0]!)
    await eventually('every worker to route every key', async () => {
      for (const w of ws) {
        for (const key of KEYS)
          if ((await get(`${w.app.webUrl}/tables/counts/${key}`)).status !== 200) return false
      }
      return true
    })
    let forwarded = 0
    for (const w of ws) {
      for (const key of KEYS) {
        const a = await get(`${w.app.webUrl}/tables/counts/${encodeURIComponent(key)}`)
        expect(a.status, JSON.stringify(a.body)).toBe(200)
        expect(a.body).toMatchObject({ table: 'counts', key, value: want.get(key), found: true })
        expect(a.worker).toBe(ownerOf(ws, key).app.worker!.id)
        if (a.worker !== w.app.worker!.id) forwarded++
      }
    }
    // Each worker owns about a third of the keys: two thirds of the reads went elsewhere.
    expect(forwarded).toBeGreaterThan(KEYS.length)
    const health = await get(`${ws[1]!.app.webUrl}/health`)
    expect(health.body.worker).toBe(ws[1]!.app.worker!.id)
    expect(health.worker).toBe(ws[1]!.app.worker!.id)
  })

  it('a page with routeBy { table } or { topic } is served by the owner of the key', async () => {
    const ws = [worker(), worker(), worker()]
    const ts = await startAll(ws)
    const want = await sendCounts(ts[0]!, ws[0]!)
    await eventually('routed pages', async () => {
      for (const w of ws) {
        for (const key of KEYS) {
          const a = await get(`${w.app.webUrl}/users/${key}`)
          if (a.status !== 200 || a.worker !== ownerOf(ws, key).app.worker!.id) return false
        }
      }
      return true
    })
    for (const w of ws) {
      for (const key of KEYS) {
        const a = await get(`${w.app.webUrl}/users/${key}`)
        expect(a.body).toEqual({ user: key, count: want.get(key) })
        expect(a.worker).toBe(ownerOf(ws, key).app.worker!.id)
        const b = await get(`${w.app.webUrl}/inputs/${key}?x=1`)
        expect(b.status).toBe(200)
        expect(b.body).toEqual({ key })
        expect(b.worker).toBe(ownerOf(ws, key).app.worker!.id)
      }
    }
  })

  it('ask() from any worker is answered by the owner of the key, through the replies topic', async () => {
    const ws = [worker(), worker(), worker()]
    await startAll(ws)
    let remote = 0
    for (const [i, key] of KEYS.entries()) {
      const asker = ws[i % 3]!
      if (ownerOf(ws, key) !== asker) remote++
      // First ask of the key: the count is 10; the second, from the next worker, 15.
      expect(await within(3_000, asker.count.ask(10, { key, timeoutMs: 60_000 }))).toBe(10)
      expect(await within(3_000, ws[(i + 1) % 3]!.count.ask(5, { key, timeoutMs: 60_000 }))).toBe(15)
    }
    expect(remote).toBeGreaterThan(KEYS.length / 2)
    // The ask timeout still applies to an answer that has to come from another worker.
    const key = KEYS.find((k) => ownerOf(ws, k) !== ws[0])!
    const late = ws[0]!.count.ask(-1, { key, timeoutMs: 1_000 })
    const failed = expect(late).rejects.toMatchObject({ code: 'ASK_TIMEOUT' })
    // Time passes on the fake clock (the owner's agent is held, so no settle()).
    const clock = running[0]!.clock
    await new Promise((r) => setTimeout(r, 100))
    const target = clock.now() + 1_000
    while (clock.fireNext(target));
    clock.set(target)
    await failed
    for (const w of ws) w.release()
  })

  it('answers 503 when no owner is known, when the owner does not answer, and never forwards twice', async () => {
    // The second worker serves no web: it writes no route, so nobody knows it owns its keys.
    const ws = [worker({ port: 0, forwardTimeoutMs: 300 }), worker(false), worker({ port: 0 })]
    await startAll(ws)
    const [a, , c] = ws as [Worker, Worker, Worker]
    const dark = KEYS.find((k) => ownerOf(ws, k) === ws[1])!
    const onC = KEYS.find((k) => ownerOf(ws, k) === c)!
    await eventually(
      'a route to c',
      async () => (await get(`${a.app.webUrl}/tables/counts/${onC}`)).status === 200,
    )

    const unknown = await get(`${a.app.webUrl}/tables/counts/${dark}`)
    expect(unknown.status).toBe(503)
    expect(unknown.body.error).toBe('NO_OWNER')
    expect(unknown.body.message).toContain('no worker of app routing is known to own partition')
    expect(unknown.worker).toBe(a.app.worker!.id)

    // A request already forwarded is never forwarded again.
    const loop = await get(`${a.app.webUrl}/tables/counts/${onC}`, { 'x-mephisto-forwarded-by': 'elsewhere' })
    expect(loop.status).toBe(503)
    expect(loop.body.error).toBe('NOT_OWNER')

    // The owner's page hangs: the forward gives up after forwardTimeoutMs.
    c.hangPages()
    const slow = await get(`${a.app.webUrl}/slow/${onC}`)
    expect(slow.status).toBe(503)
    expect(slow.body.error).toBe('OWNER_UNAVAILABLE')
    expect(slow.body.message).toContain('did not answer within 300 ms')

    // The owner's server is gone: 503 at once.
    await c.app.worker!.web!.close()
    const gone = await get(`${a.app.webUrl}/tables/counts/${onC}`)
    expect(gone.status).toBe(503)
    expect(gone.body.error).toBe('OWNER_UNAVAILABLE')
    expect(gone.body.owner.worker).toBe(c.app.worker!.id)
  })

  it('forwards the bearer token; web.forward: false answers 421 naming the owner', async () => {
    const token = 'route-token'
    const ws = [worker({ port: 0, token }, 'routing-token'), worker({ port: 0, token }, 'routing-token')]
    const ts = await startAll(ws)
    const want = await sendCounts(ts[0]!, ws[0]!)
    const auth = { authorization: `Bearer ${token}` }
    const key = KEYS.find((k) => ownerOf(ws, k) === ws[1])!
    await eventually(
      'a forwarded read with the token',
      async () => (await get(`${ws[0]!.app.webUrl}/tables/counts/${key}`, auth)).status === 200,
    )
    const a = await get(`${ws[0]!.app.webUrl}/tables/counts/${key}`, auth)
    expect(a.body.value).toBe(want.get(key))
    expect(a.worker).toBe(ws[1]!.app.worker!.id)

    const off = [worker({ port: 0, forward: false }, 'routing-off'), worker({ port: 0 }, 'routing-off')]
    await startAll(off)
    const far = KEYS.find((k) => ownerOf(off, k) === off[1])!
    await eventually(
      'a known owner',
      async () => (await get(`${off[0]!.app.webUrl}/tables/counts/${far}`)).status === 421,
    )
    const b = await get(`${off[0]!.app.webUrl}/tables/counts/${far}`)
    expect(b.body.error).toBe('NOT_OWNED')
    expect(b.body.owner).toEqual({ worker: off[1]!.app.worker!.id, url: off[1]!.app.webUrl })
  })

  it('a stopping worker leaves the route book with a tombstone', async () => {
    const ws = [worker(), worker()]
    const ts = await startAll(ws)
    const id = ws[1]!.app.worker!.id
    await ts[1]!.stop()
    const mine = ts[0]!.records('routing-__routes').filter((r) => r.key?.toString() === id)
    expect(mine.length).toBeGreaterThan(0)
    expect(mine.at(-1)!.value).toBeNull()
  })

  it('rejects a routeBy that names no parameter of the path, or a channel', () => {
    const { app, counts } = worker()
    expect(() => app.page('/x/:a', () => 1, { routeBy: { table: counts, param: 'b' } })).toThrow(
      /param "b" is not a parameter of the path/,
    )
    expect(() =>
      app.page('/y/:a', () => 1, { routeBy: { topic: app.channel() as any, param: 'a' } }),
    ).toThrow(/not a channel/)
  })
})
