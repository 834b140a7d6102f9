import type { TestApp } from '@mephisto/testkit'
import { describe, expect, it } from 'vitest'
import { App, currentEvent } from '../src/index.js'
import type { Closed, WindowTestOptions } from './windowTestkit.js'
import { reportingTable, testApps } from './windowTestkit.js'

const MINUTE = 60_000
const apps = testApps()

interface Reading {
  sensor: string
  at: number
}

/**
 * Readings counted per sensor per minute of the time they carry (`relativeToField`), as a
 * replay of old data would be: the app clock is far from the readings' times.
 */
function perMinute(options: Omit<WindowTestOptions, 'graceMs' | 'idleMs'> = {}) {
  const names = { app: 'stream-time', topic: 'readings', table: 'per-minute' }
  const w = reportingTable<Reading, number>(apps, names, () => 0, options)
  const view = w.table
    .tumbling(MINUTE, { graceMs: 10_000, lateEvents: options.lateEvents })
    .relativeToField((r: Reading) => r.at)
  const agent = w.app.agent(w.topic, async (stream) => {
    for await (const r of stream) await view.update(r.sensor, (n) => n + 1)
  })
  return { ...w, readings: w.topic, view, agent }
}

/** 600 readings of two sensors spread evenly over five minutes from the epoch. */
async function replayEpoch(t: TestApp, topic: ReturnType<typeof perMinute>['readings'], from = 0, to = 600) {
  for (let i = from; i < to; i++) {
    const sensor = i % 2 === 0 ? 'a' : 'b'
    await t.send(topic, { key: sensor, value: { sensor, at: i * 500 } })
  }
}

function byWindow(closed: Closed<number>[]): string[] {
  return closed.map(([sensor, w, n]) => `${sensor} ${w.start / MINUTE} ${n}`)
}

const EVERY_WINDOW = [0, 1, 2, 3, 4].flatMap((m) => [`a ${m} 60`, `b ${m} 60`])

describe('stream time', () => {
  it('a replay of epoch-based history counts every window exactly, once each, oldest first', async () => {
    const w = perMinute()
    const t = await apps.start(w.app)
    await replayEpoch(t, w.readings)
    await t.settle()
    // Stream time is 299.5 s: the windows up to [3 min, 4 min) are past their grace.
    expect(byWindow(w.closed)).toEqual(EVERY_WINDOW.slice(0, 8))
    expect(w.view.streamTime(0)).toBe(299_500)
    expect(w.lateEvents()).toBe(0)
    // The last window waits for stream time, or for the partition to go idle (idleMs: size + grace).
    expect(await w.view.items('a')).toEqual([[{ start: 4 * MINUTE, end: 5 * MINUTE }, 60]])
    await t.advance(MINUTE + 10_000)
    await t.settle()
    expect(byWindow(w.closed)).toEqual(EVERY_WINDOW)
    expect(await w.view.items('a')).toEqual([])
  })

  it('a quiet partition closes its windows by the clock after idleMs, while a busy one goes by stream time', async () => {
    const w = perMinute({ partitions: 2 })
    const t = await apps.start(w.app)
    await t.send(w.readings, { key: 'quiet', value: { sensor: 'quiet', at: 1_000 }, partition: 1 })
    for (let i = 0; i < 200; i++)
      await t.send(w.readings, { key: 'busy', value: { sensor: 'busy', at: i * 1_000 }, partition: 0 })
    await t.settle()
    // Partition 0's stream time is 199 s: its windows up to [2 min, 3 min) are past their grace.
    expect(byWindow(w.closed)).toEqual(['busy 0 60', 'busy 1 60', 'busy 2 60'])
    await t.advance(70_001)
    await t.settle()
    expect(byWindow(w.closed)).toEqual(['busy 0 60', 'busy 1 60', 'busy 2 60', 'busy 3 20', 'quiet 0 1'])
  })

  it('late events are dropped and counted by default', async () => {
    const w = perMinute()
    const t = await apps.start(w.app)
    await t.send(w.readings, { key: 'a', value: { sensor: 'a', at: 5 * MINUTE } })
    // Its window [1 min, 2 min) closed at stream time 2 min 10 s; the grace keeps [4 min, 5 min) open.
    await t.send(w.readings, { key: 'a', value: { sensor: 'a', at: MINUTE + 1 } })
    await t.send(w.readings, { key: 'a', value: { sensor: 'a', at: 4 * MINUTE + 55_000 } })
    await t.settle()
    expect(w.lateEvents()).toBe(1)
    expect((await w.view.items('a')).map(([win, n]) => [win.start / MINUTE, n])).toEqual([
      [4, 1],
      [5, 1],
    ])
    expect(t.deadLetters(w.agent)).toEqual([])
  })

  it("late events go to the agent's dead letters with LATE_EVENT when the table says so, without retries", async () => {
    const w = perMinute({ lateEvents: 'deadLetter' })
    const t = await apps.start(w.app)
    await t.send(w.readings, { key: 'a', value: { sensor: 'a', at: 5 * MINUTE } })
    await t.send(w.readings, { key: 'a', value: { sensor: 'a', at: MINUTE + 1 } })
    await t.send(w.readings, { key: 'a', value: { sensor: 'a', at: 5 * MINUTE + 1 } })
    await t.settle()
    const dead = t.deadLetters(w.agent)
    expect(dead).toHaveLength(1)
    expect(dead[0]).toMatchObject({ code: 'LATE_EVENT', sourceOffset: 1 })
    expect(dead[0]!.error).toContain('table per-minute')
    expect(dead[0]!.error).toContain('is late')
    expect(await w.view.items('a')).toEqual([[{ start: 5 * MINUTE, end: 6 * MINUTE }, 2]])
  })

  it('a restart resumes the stream time it had: a crash mid-replay still gives every window once, exactly', async () => {
    const w = perMinute({ guarantee: 'exactly_once' })
    const t = await apps.start(w.app)
    await replayEpoch(t, w.readings, 0, 400)
    await t.settle()
    await t.commit()
    await replayEpoch(t, w.readings, 400, 500)
    await t.settle()
    // Windows closed since the commit are reported again after the crash (onWindowClose is at
    // least once); each with the same value.
    await t.crash()
    await t.restart()
    // What the last commit held (the testkit commits when it settles), not nothing.
    expect(w.view.streamTime(0)).toBeGreaterThanOrEqual(199_500)
    await replayEpoch(t, w.readings, 500, 600)
    await t.settle()
    await t.advance(MINUTE + 10_000)
    await t.settle()
    const unique = [...new Set(byWindow(w.closed))]
    expect(unique).toEqual(EVERY_WINDOW)
    expect(w.lateEvents()).toBe(0)
  })

  it('onWindowClose runs outside the event whose write moved stream time (not in its transaction)', async () => {
    const app = new App({ id: 'close-context', logger: 'silent', processingGuarantee: 'exactly_once' })
    const readings = app.topic<string, Reading>('readings', { partitions: 2 })
    const reports = app.topic<string, string>('reports', { partitions: 2 })
    const contexts: unknown[] = []
    const view = app
      .table<string, number>('per-minute', {
        default: () => 0,
        partitions: 2,
        onWindowClose: async (sensor, window, n) => {
          contexts.push(currentEvent())
          await reports.send({ key: sensor, value: `${sensor} ${window.start / MINUTE} ${n}` })
        },
      })
      .tumbling(MINUTE, { graceMs: 0 })
      .relativeToField((r: Reading) => r.at)
    app.agent(readings, async (stream) => {
      for await (const r of stream) await view.update(r.sensor, (n) => n + 1)
    })
    const t = await apps.start(app)
    await t.send(readings, { key: 'a', value: { sensor: 'a', at: 1_000 }, partition: 0 })
    await t.send(readings, { key: 'a', value: { sensor: 'a', at: 2 * MINUTE }, partition: 0 })
    await t.settle()
    await t.commit()
    expect(contexts).toEqual([undefined])
    expect(t.sent(reports).map((m) => m.value)).toEqual(['a 0 1'])
  })
})
