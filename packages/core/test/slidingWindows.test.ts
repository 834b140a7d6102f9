import { describe, expect, it } from 'vitest'
import type { WindowTestOptions } from './windowTestkit.js'
import { reportingTable, reversedBlocks, testApps, windowsOf } from './windowTestkit.js'

const SECOND = 1000
/** Events at most 5 s apart share a window: a window starting at s holds s to s + 5 s, both in. */
const SIZE = 5 * SECOND
const apps = testApps()

/** A reading of a sensor at a time it carries (`relativeToField`). */
interface Reading {
  sensor: string
  at: number
}

/** Readings counted per sensor per sliding window of 5 s; `seen` is each reading's count of the last 5 s. */
function readingsPerWindow(options: WindowTestOptions = {}) {
  const names = { app: 'sliding', topic: 'readings', table: 'readings-per-window' }
  const s = reportingTable<Reading, number>(apps, names, () => 0, options)
  const view = s.table
    .sliding(SIZE, { graceMs: options.graceMs ?? 10 * SECOND, lateEvents: options.lateEvents })
    .relativeToField((r: Reading) => r.at)
  const seen: [number, number][] = []
  const agent = s.app.agent(s.topic, async (stream) => {
    for await (const r of stream) {
      await view.update(r.sensor, (n) => n + 1)
      seen.push([r.at, await view.current(r.sensor)])
    }
  })
  const read = (sensor: string, at: number, partition?: number) => s.send(sensor, { sensor, at }, partition)
  return { ...s, view, agent, read, seen }
}

describe('sliding windows', () => {
  it("Kafka Streams' example: a window ending at each event and one starting after each, counts by hand", async () => {
    const s = readingsPerWindow()
    const t = await apps.start(s.app)
    // Kafka Streams' SlidingWindows javadoc, time difference 5000 ms, readings at 8000, 9200, 12400:
    //   [3000, 8000]  {8000}               ends at the first reading
    //   [4200, 9200]  {8000, 9200}         ends at the second
    //   [7400, 12400] {8000, 9200, 12400}  ends at the third
    //   [8001, 13001] {9200, 12400}        starts just after the first, which drops out
    //   [9201, 14201] {12400}              starts just after the second
    // No window starts after 12400: it would be empty. Windows here are half-open: [s, s + 5001).
    await s.read('A', 8_000)
    await s.read('A', 9_200)
    await s.read('A', 12_400)
    await t.settle()
    expect(await windowsOf(s.view, 'A')).toEqual([
      [3_000, 8_001, 1],
      [4_200, 9_201, 2],
      [7_400, 12_401, 3],
      [8_001, 13_002, 2],
      [9_201, 14_202, 1],
    ])
    // What each reading saw of the last 5 s (current(): the window holding exactly those readings).
    expect(s.seen).toEqual([
      [8_000, 1],
      [9_200, 2],
      [12_400, 3],
    ])
    // 10000 arrives late (out of order), within the grace. By hand, with it:
    //   [5000, 10000]  {8000, 9200, 10000}         new: its own window, from [4200, 9200]'s 2, plus 1
    //   [7400, 12400]  {8000, 9200, 10000, 12400}  holds 10000: 3 + 1
    //   [8001, 13001]  {9200, 10000, 12400}        holds 10000: 2 + 1
    //   [9201, 14201]  {10000, 12400}              holds 10000: 1 + 1
    //   [10001, 15001] {12400}                     new: starts after 10000, from [9201, 14201]'s 1
    // [3000, 8000] and [4200, 9200] end before 10000 and stay as they were.
    await s.read('A', 10_000)
    await t.settle()
    expect(await windowsOf(s.view, 'A')).toEqual([
      [3_000, 8_001, 1],
      [4_200, 9_201, 2],
      [5_000, 10_001, 3],
      [7_400, 12_401, 4],
      [8_001, 13_002, 3],
      [9_201, 14_202, 2],
      [10_001, 15_002, 1],
    ])
    expect(s.seen.at(-1)).toEqual([10_000, 3])
    const entries: string[] = []
    for await (const [sensor, w, n] of s.view.entries()) entries.push(`${sensor} ${w.start} ${n}`)
    expect(entries.sort()).toEqual([
      'A 10001 1',
      'A 3000 1',
      'A 4200 2',
      'A 5000 3',
      'A 7400 4',
      'A 8001 3',
      'A 9201 2',
    ])
    expect(await s.view.keysIn({ start: 5_000, end: 10_001 })).toEqual([['A', 3]])
    expect(s.closed).toEqual([])
  })

  it('closes each window once, oldest first, when stream time passes its end + graceMs; late events dropped', async () => {
    const s = readingsPerWindow({ graceMs: SECOND })
    const t = await apps.start(s.app)
    // A window [s, s + 5000] closes when stream time passes s + 5000 + 1000: reaches s + 6001.
    await s.read('A', 8_000)
    await s.read('A', 9_200) // stream time 9200 >= 9001: [3000, 8000] closes
    await s.read('A', 12_400) // >= 10201: [4200, 9200] closes
    await t.settle()
    expect(s.reported()).toEqual(['A 3000-8001 1', 'A 4200-9201 2'])
    await s.read('B', 13_400)
    await t.settle()
    expect(s.reported()).toHaveLength(2) // [7400, 12400] closes at 13401, not yet
    await s.read('B', 13_401)
    await t.settle()
    expect(s.reported().slice(2)).toEqual(['A 7400-12401 3'])
    // 15202 closes A's [8001, 13001] (14002), B's [8400, 13400] (14401) and [8401, 13401]
    // (14402; it holds both of B's readings), and A's [9201, 14201] (15202), in order of start.
    await s.read('B', 15_202)
    await t.settle()
    expect(s.reported().slice(3)).toEqual([
      'A 8001-13002 2',
      'B 8400-13401 1',
      'B 8401-13402 2',
      'A 9201-14202 1',
    ])
    // 9000: every window that would hold it has closed ([4000, 9000] too, at 10001): late.
    await s.read('A', 9_000)
    await t.settle()
    expect(s.lateEvents()).toBe(1)
    expect(t.deadLetters(s.agent)).toEqual([])
    // B's last windows wait for stream time, or for the clock once the partition is idle
    // (idleMs: size + grace = 6001 ms).
    expect(s.reported()).toHaveLength(7)
    await t.advance(7 * SECOND)
    // B's windows, by hand: [10202, 15202] {13400, 13401, 15202}, [13401, 18401] {13401, 15202},
    // [13402, 18402] {15202}.
    expect(s.reported().slice(7)).toEqual(['B 10202-15203 3', 'B 13401-18402 2', 'B 13402-18403 1'])
    await t.advance(7 * SECOND)
    expect(s.reported()).toHaveLength(10)
    expect(await windowsOf(s.view, 'A')).toEqual([])
  })

  it('a quiet partition closes its windows by the clock after idleMs', async () => {
    const s = readingsPerWindow({ partitions: 2, graceMs: SECOND })
    const t = await apps.start(s.app)
    await s.read('quiet', 1_000, 1)
    for (let i = 0; i < 20; i++) await s.read('busy', i * 10 * SECOND, 0)
    await t.settle()
    // Partition 0 is at 190 s: each busy reading is alone in its window, all closed but the last.
    expect(s.closed.filter(([sensor]) => sensor === 'busy')).toHaveLength(19)
    expect(s.closed.filter(([sensor]) => sensor === 'quiet')).toEqual([])
    await t.advance(7 * SECOND) // the close pass runs every second (the grace)
    expect(s.closed.filter(([sensor]) => sensor === 'quiet')).toEqual([
      ['quiet', { start: -4_000, end: 1_001 }, 1],
    ])
    expect(s.closed).toHaveLength(21)
  })

  it("late events go to the agent's dead letters with LATE_EVENT when the table says so", async () => {
    const s = readingsPerWindow({ graceMs: SECOND, lateEvents: 'deadLetter' })
    const t = await apps.start(s.app)
    await s.read('A', 8_000)
    await s.read('B', 20_000)
    await s.read('A', 9_000) // its windows closed at 10001 at the latest; stream time is 20000
    await s.read('A', 19_000)
    await t.settle()
    const dead = t.deadLetters(s.agent)
    expect(dead).toHaveLength(1)
    expect(dead[0]).toMatchObject({ code: 'LATE_EVENT', sourceOffset: 2 })
    expect(dead[0]!.error).toContain('table readings-per-window')
    expect(await windowsOf(s.view, 'A')).toEqual([[14_000, 19_001, 1]])
  })

  it('a crash mid-stream under exactly-once resumes exactly: every window once, with its exact count', async () => {
    const s = readingsPerWindow({ graceMs: 4 * SECOND, guarantee: 'exactly_once' })
    const events = unevenReadings()
    const t = await apps.start(s.app)
    const beforeCrash = await s.sendAcrossCrash(events, s.read, { commitAt: 60, crashAt: 100 })
    await t.advance(60 * SECOND)
    // onWindowClose is at least once: windows closed after the last commit come again, the same.
    expect([...new Set(s.reported())]).toEqual(expectedWindows(events))
    expect(beforeCrash).toBeGreaterThan(0)
    expect(s.lateEvents()).toBe(0)
  })
})

/**
 * 144 readings of three sensors, one every 0.7 s, in three bursts 30 s apart; each block of six
 * sent in reverse, so each sensor's two readings of a block come out of order: stream time runs
 * up to 3.5 s ahead of a reading, within the 4 s grace.
 */
function unevenReadings(): [string, number][] {
  const inOrder: [string, number][] = []
  for (let i = 0; i < 144; i++) inOrder.push([`s${i % 3}`, i * 700 + Math.floor(i / 48) * 30 * SECOND])
  return reversedBlocks(inOrder, 6)
}

/**
 * The windows of the readings, worked out the plain way: per sensor, a window ending at each
 * reading and one starting 1 ms after each reading that a later reading falls in; its count is the
 * readings in [start, start + SIZE]. Reported in order of start, then sensor.
 */
function expectedWindows(events: [string, number][]): string[] {
  const windows: { sensor: string; start: number; n: number }[] = []
  for (const sensor of new Set(events.map(([x]) => x))) {
    const times = events
      .filter(([x]) => x === sensor)
      .map(([, at]) => at)
      .sort((a, b) => a - b)
    const starts = new Set<number>()
    for (const r of times) {
      starts.add(r - SIZE)
      if (times.some((u) => u > r && u <= r + 1 + SIZE)) starts.add(r + 1)
    }
    for (const start of starts)
      windows.push({ sensor, start, n: times.filter((x) => x >= start && x <= start + SIZE).length })
  }
  windows.sort((a, b) => a.start - b.start || (a.sensor < b.sensor ? -1 : 1))
  return windows.map((w) => `${w.sensor} ${w.start}-${w.start + SIZE + 1} ${w.n}`)
}
