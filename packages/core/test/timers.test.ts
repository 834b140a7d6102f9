import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import type { App } from '../src/index.js'
import { quietApp } from './helpers.js'

const running: TestApp[] = []
afterEach(async () => {
  for (const t of running.splice(0).reverse()) if (t.app.running) await t.stop()
})
async function start(app: App, options?: Parameters<typeof TestApp.start>[1]): Promise<TestApp> {
  const t = await TestApp.start(app, options)
  running.push(t)
  return t
}

const MINUTE = 60_000

describe('app.timer', () => {
  it('runs every interval of the fake clock', async () => {
    const app = quietApp('ticks')
    const at: number[] = []
    let t!: TestApp
    let t0 = 0
    app.timer(1000, () => {
      at.push(t.clock.now() - t0)
    })
    t = await start(app)
    t0 = t.clock.now()
    await t.advance(999)
    expect(at).toEqual([])
    await t.advance(2501)
    expect(at).toEqual([1000, 2000, 3000])
  })

  it('a failing run is logged and the timer keeps going', async () => {
    const app = quietApp('flaky-timer')
    let runs = 0
    app.timer(100, () => {
      runs++
      if (runs === 1) throw new Error('first run fails')
    })
    const t = await start(app)
    await t.advance(300)
    expect(runs).toBe(3)
    expect(app.running).toBe(true)
  })

  it('waits for an async run before scheduling the next (no overlap)', async () => {
    const app = quietApp('slow-timer')
    let active = 0
    let maxActive = 0
    let runs = 0
    app.timer(100, async () => {
      active++
      maxActive = Math.max(maxActive, active)
      runs++
      await new Promise((r) => setTimeout(r, 5))
      active--
    })
    const t = await start(app)
    await t.advance(1000)
    expect(runs).toBe(10)
    expect(maxActive).toBe(1)
  })

  it('writes a table with { partition } from a timer', async () => {
    const app = quietApp('timer-table')
    const ticks = app.table<string, number>('ticks', { default: () => 0, partitions: 2 })
    app.timer(1000, async () => {
      await ticks.update('n', (n) => n + 1, { partition: 1 })
    })
    const t = await start(app)
    await t.advance(5000)
    expect(await ticks.get('n', { partition: 1 })).toBe(5)
  })

  it('stops with the app', async () => {
    const app = quietApp('stopped-timer')
    let runs = 0
    app.timer(100, () => {
      runs++
    })
    const t = await start(app)
    await t.advance(200)
    await t.stop()
    t.clock.set(t.clock.now() + 10_000)
    while (t.clock.fireNext(t.clock.now())) {
      // fire whatever is left: nothing of the timer should be
    }
    expect(runs).toBe(2)
  })
})

describe('app.crontab', () => {
  it('runs on the cron schedule of the fake clock (UTC by default)', async () => {
    const app = quietApp('cron')
    const runs: string[] = []
    let t!: TestApp
    app.crontab('*/15 * * * *', () => {
      runs.push(new Date(t.clock.now()).toISOString())
    })
    t = await start(app, { now: Date.UTC(2026, 0, 1, 0, 7) })
    await t.advance(8 * MINUTE - 1)
    expect(runs).toEqual([])
    await t.advance(1 + 30 * MINUTE)
    expect(runs).toEqual(['2026-01-01T00:15:00.000Z', '2026-01-01T00:30:00.000Z', '2026-01-01T00:45:00.000Z'])
  })

  it('honours the timezone', async () => {
    // Few commit ticks over the hours this test covers.
    const app = quietApp('cron-tz', { commitIntervalMs: 3_600_000 })
    const runs: string[] = []
    let t!: TestApp
    // 09:00 in Tokyo is 00:00 UTC.
    app.crontab(
      '0 9 * * *',
      () => {
        runs.push(new Date(t.clock.now()).toISOString())
      },
      { timezone: 'Asia/Tokyo' },
    )
    // In UTC it would run at 09:00Z, inside this window too.
    t = await start(app, { now: Date.UTC(2026, 0, 1, 23, 30) })
    await t.advance(10 * 60 * MINUTE)
    expect(runs).toEqual(['2026-01-02T00:00:00.000Z'])
  })

  it('accepts six fields (seconds)', async () => {
    const app = quietApp('cron-seconds')
    let runs = 0
    app.crontab('*/10 * * * * *', () => {
      runs++
    })
    const t = await start(app)
    await t.advance(MINUTE)
    expect(runs).toBe(6)
  })
})

describe('app.task', () => {
  it('runs once when the worker is ready, and again after a restart', async () => {
    const app = quietApp('tasks')
    const runs: boolean[] = []
    app.task(() => {
      runs.push(app.running)
    })
    const t = await start(app)
    await t.advance(10 * MINUTE)
    expect(runs).toEqual([true])
    await t.crash()
    await t.restart()
    expect(runs).toEqual([true, true])
  })
})

describe('onLeader', () => {
  function leaderApp(log: string[], name: string) {
    const app = quietApp('leaders', { topicPartitions: 2 })
    const input = app.topic<string, string>('input', { partitions: 2 })
    app.agent(input, async (stream) => {
      for await (const _ of stream) {
        // nothing
      }
    })
    app.timer(1000, () => void log.push(`timer:${name}`), { onLeader: true })
    app.timer(1000, () => void log.push(`every:${name}`))
    app.crontab('* * * * *', () => void log.push(`cron:${name}`), { onLeader: true })
    return app
  }

  it('runs on exactly one of two workers, and moves when the leader leaves', async () => {
    const log: string[] = []
    const t1 = await start(leaderApp(log, 'w1'))
    const t2 = await start(leaderApp(log, 'w2'), { broker: t1.broker, clock: t1.clock })
    await t1.advance(MINUTE)
    const timers = log.filter((l) => l.startsWith('timer:'))
    expect(timers).toHaveLength(60)
    expect(new Set(timers).size).toBe(1)
    expect(log.filter((l) => l.startsWith('cron:'))).toHaveLength(1)
    // Timers without onLeader run on both.
    expect(log.filter((l) => l === 'every:w1')).toHaveLength(60)
    expect(log.filter((l) => l === 'every:w2')).toHaveLength(60)

    const leader = timers[0] === 'timer:w1' ? t1 : t2
    const other = leader === t1 ? t2 : t1
    const otherName = other === t1 ? 'w1' : 'w2'
    await leader.stop()
    log.length = 0
    await other.advance(10_000)
    expect(log.filter((l) => l.startsWith('timer:'))).toEqual(Array(10).fill(`timer:${otherName}`))
  })
})
