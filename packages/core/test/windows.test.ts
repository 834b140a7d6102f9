import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import type { Window } from '../src/index.js'
import { App } from '../src/index.js'

interface Hit {
  userId: string
  hits: number
  timestamp: number
}

const MINUTE = 60_000
let t: TestApp | undefined
afterEach(async () => {
  await t?.stop()
  t = undefined
})

function windowedCounter(kind: 'tumbling' | 'hopping', closed: [string, Window, number][] = []) {
  const app = new App({ id: `win-${kind}`, logger: 'warn' })
  const hits = app.topic<string, Hit>('hits', { partitions: 1 })
  const table = app.table<string, number>('per-window', {
    default: () => 0,
    partitions: 1,
    onWindowClose: (key, window, value) => {
      closed.push([key, window, value])
    },
  })
  const view =
    kind === 'tumbling'
      ? table.tumbling(MINUTE, { expiresMs: MINUTE })
      : table.hopping(5 * MINUTE, MINUTE, { expiresMs: MINUTE })
  app.agent(hits, async (stream) => {
    for await (const hit of stream) await view.update(hit.userId, (n) => n + 1)
  })
  return { app, hits, view, closed }
}

/** Sends a hit stamped `at` (event time). */
async function hit(t: TestApp, topic: ReturnType<typeof windowedCounter>['hits'], user: string, at: number) {
  await t.send(topic, { key: user, value: { userId: user, hits: 1, timestamp: at }, timestamp: at })
}

describe('windowed tables', () => {
  it('counts per user per minute (tumbling), by event time', async () => {
    const w = windowedCounter('tumbling')
    t = await TestApp.start(w.app)
    const t0 = Math.floor(t.clock.now() / MINUTE) * MINUTE
    await hit(t, w.hits, 'u1', t0 + 1_000)
    await hit(t, w.hits, 'u1', t0 + 59_000)
    await hit(t, w.hits, 'u1', t0 + MINUTE + 1)
    await hit(t, w.hits, 'u2', t0 + 5_000)
    await t.settle()
    const items = await w.view.items('u1')
    expect(items.map(([win, n]) => [win.start - t0, n])).toEqual([
      [0, 2],
      [MINUTE, 1],
    ])
    expect(await w.view.now('u2')).toBe(1)
  })

  it('keeps 5-minute windows every minute (hopping): each event lands in 5 windows', async () => {
    const w = windowedCounter('hopping')
    t = await TestApp.start(w.app)
    const t0 = Math.floor(t.clock.now() / MINUTE) * MINUTE
    await hit(t, w.hits, 'u1', t0 + 10)
    await t.settle()
    const starts = (await w.view.items('u1')).map(([win]) => (win.start - t0) / MINUTE)
    expect(starts).toEqual([-4, -3, -2, -1, 0])
    expect(w.view.windowsAt(t0 + 10)).toHaveLength(5)
  })

  it('closes expired windows on a timer, with no further events, and reports them', async () => {
    const w = windowedCounter('tumbling')
    t = await TestApp.start(w.app)
    const t0 = Math.floor(t.clock.now() / MINUTE) * MINUTE
    await hit(t, w.hits, 'u1', t0 + 1_000)
    await hit(t, w.hits, 'u1', t0 + 2_000)
    await t.settle()
    expect(w.closed).toEqual([])
    // The window ends at t0+1min and expires a minute later: no event arrives meanwhile.
    await t.advance(2 * MINUTE + 10_000)
    expect(w.closed).toEqual([['u1', { start: t0, end: t0 + MINUTE }, 2]])
    expect(await w.view.items('u1')).toEqual([])
    // ...and the changelog holds its tombstone.
    await t.commit()
    const changelog = t.records('win-tumbling-per-window-changelog')
    expect(changelog.at(-1)?.value).toBeNull()
  })

  it('does not merge a late event into a closed window; counts it', async () => {
    const w = windowedCounter('tumbling')
    t = await TestApp.start(w.app)
    const t0 = Math.floor(t.clock.now() / MINUTE) * MINUTE
    // Stream time is t0 once this is counted; a window ending 9 minutes before it is closed.
    await hit(t, w.hits, 'u0', t0)
    await hit(t, w.hits, 'u1', t0 - 10 * MINUTE)
    await t.settle()
    expect(await w.view.items('u1')).toEqual([])
    expect(w.app.monitor.snapshot().tables['per-window']?.lateEvents).toBe(1)
  })
})
