import { describe, expect, it } from 'vitest'
import type { Window } from '../src/index.js'
import { App } from '../src/index.js'
import type { WindowTestOptions } from './windowTestkit.js'
import { reportingTable, reversedBlocks, testApps, windowsOf } from './windowTestkit.js'

const SECOND = 1000
const GAP = 10 * SECOND
const apps = testApps()

/** A visit of a user at a time it carries (`relativeToField`): the app clock is elsewhere. */
interface Visit {
  user: string
  at: number
}

/**
 * The times of each user's visits per session (a session keeps the times in the order they were
 * counted, so a merge shows which side came first), closing `graceMs` after its end.
 */
function visitsPerSession(options: WindowTestOptions = {}) {
  const names = { app: 'sessions', topic: 'visits', table: 'visit-sessions' }
  const s = reportingTable<Visit, number[]>(apps, names, () => [], options)
  const view = s.table
    .session(GAP, {
      merge: (older, newer) => [...older, ...newer],
      graceMs: options.graceMs ?? 5 * SECOND,
      idleMs: options.idleMs,
      lateEvents: options.lateEvents,
    })
    .relativeToField((v: Visit) => v.at)
  const agent = s.app.agent(s.topic, async (stream) => {
    for await (const v of stream) await view.update(v.user, (times) => [...times, v.at])
  })
  const visit = (user: string, at: number, partition?: number) => s.send(user, { user, at }, partition)
  return { ...s, view, agent, visit }
}

describe('session windows', () => {
  it('merges out-of-order events: one between two sessions joins them, older values first', async () => {
    const s = visitsPerSession({ graceMs: 20 * SECOND })
    const t = await apps.start(s.app)
    await s.visit('a', 0)
    await s.visit('a', 2_000)
    await s.visit('a', 30_000)
    await t.settle()
    // 0 and 2 s are 2 s apart: one session [0, 2 s + gap); 30 s is 28 s after 2 s: another.
    expect(await windowsOf(s.view, 'a')).toEqual([
      [0, 12_000, [0, 2_000]],
      [30_000, 40_000, [30_000]],
    ])
    // 15 s is 13 s after 2 s and 15 s before 30 s: a session of its own.
    await s.visit('a', 15_000)
    await t.settle()
    expect(await windowsOf(s.view, 'a')).toEqual([
      [0, 12_000, [0, 2_000]],
      [15_000, 25_000, [15_000]],
      [30_000, 40_000, [30_000]],
    ])
    // 21 s is 6 s after 15 s and 9 s before 30 s: it joins both; merge(older, newer), then the update.
    await s.visit('a', 21_000)
    await t.settle()
    expect(await windowsOf(s.view, 'a')).toEqual([
      [0, 12_000, [0, 2_000]],
      [15_000, 40_000, [15_000, 30_000, 21_000]],
    ])
    // One storage key per session, the bounds in it: entries() reads them as windows.
    const entries: [string, Window, number[]][] = []
    for await (const e of s.view.entries()) entries.push(e)
    expect(entries.sort((x, y) => x[1].start - y[1].start)).toEqual([
      ['a', { start: 0, end: 12_000 }, [0, 2_000]],
      ['a', { start: 15_000, end: 40_000 }, [15_000, 30_000, 21_000]],
    ])
    expect(s.closed).toEqual([])
  })

  it('gap boundaries: events gapMs apart make two sessions, 1 ms closer make one, on either side', async () => {
    const s = visitsPerSession()
    const t = await apps.start(s.app)
    await s.visit('apart', 0)
    await s.visit('apart', GAP)
    await s.visit('closer', 0)
    await s.visit('closer', GAP - 1)
    await s.visit('before-apart', GAP)
    await s.visit('before-apart', 0)
    await s.visit('before-closer', GAP)
    await s.visit('before-closer', 1)
    await t.settle()
    expect(await windowsOf(s.view, 'apart')).toEqual([
      [0, GAP, [0]],
      [GAP, 2 * GAP, [GAP]],
    ])
    expect(await windowsOf(s.view, 'closer')).toEqual([[0, 2 * GAP - 1, [0, GAP - 1]]])
    expect(await windowsOf(s.view, 'before-apart')).toEqual([
      [0, GAP, [0]],
      [GAP, 2 * GAP, [GAP]],
    ])
    expect(await windowsOf(s.view, 'before-closer')).toEqual([[1, 2 * GAP, [GAP, 1]]])
  })

  it('closes each session once, in order of its end, when stream time reaches end + graceMs', async () => {
    const s = visitsPerSession({ graceMs: 5 * SECOND })
    const t = await apps.start(s.app)
    await s.visit('a', 0)
    await s.visit('b', 3_000)
    await s.visit('a', 5_000)
    await t.settle()
    // a: [0, 15 s) closes at 20 s; b: [3 s, 13 s) closes at 18 s.
    await s.visit('c', 17_999)
    await t.settle()
    expect(s.reported()).toEqual([])
    await s.visit('c', 18_000)
    await t.settle()
    expect(s.reported()).toEqual(['b 3000-13000 [3000]'])
    expect(await windowsOf(s.view, 'b')).toEqual([])
    await s.visit('c', 20_000)
    await t.settle()
    expect(s.reported()).toEqual(['b 3000-13000 [3000]', 'a 0-15000 [0,5000]'])
    // Nothing twice, however often the close pass runs; c's session [17.999 s, 30 s) is still open.
    await t.advance(5 * SECOND)
    expect(s.reported()).toEqual(['b 3000-13000 [3000]', 'a 0-15000 [0,5000]'])
    expect(await windowsOf(s.view, 'c')).toEqual([[17_999, 30_000, [17_999, 18_000, 20_000]]])
    expect(s.view.streamTime(0)).toBe(20_000)
  })

  it('a quiet partition closes its sessions by the clock after idleMs; a busy one by stream time', async () => {
    const s = visitsPerSession({ partitions: 2, graceMs: 5 * SECOND, idleMs: 60 * SECOND })
    const t = await apps.start(s.app)
    await s.visit('quiet', 1_000, 1)
    // busy: every 5 s from 0 to 95 s, then from 200 s to 295 s: two sessions.
    for (let i = 0; i < 40; i++) await s.visit('busy', i * 5 * SECOND + (i < 20 ? 0 : 100 * SECOND), 0)
    await t.settle()
    // Partition 0's stream time is 295 s: busy's first session [0, 105 s) is past its grace, the
    // second is open. Partition 1's stream time stays at 1 s: its session waits for the clock.
    const shape = () => s.closed.map(([user, w, times]) => [user, w.start, w.end, times.length])
    expect(shape()).toEqual([['busy', 0, 105_000, 20]])
    await t.advance(59 * SECOND)
    expect(shape()).toEqual([['busy', 0, 105_000, 20]])
    await t.advance(2 * SECOND)
    expect(shape()).toEqual([
      ['busy', 0, 105_000, 20],
      ['busy', 200_000, 305_000, 20],
      ['quiet', 1_000, 11_000, 1],
    ])
  })

  it('late events are dropped and counted by default, also one that would reach into a closed session', async () => {
    const s = visitsPerSession({ graceMs: 5 * SECOND })
    const t = await apps.start(s.app)
    await s.visit('a', 0)
    await s.visit('b', 15_000) // stream time 15 s: a's [0, 10 s) closes (10 s + 5 s)
    await t.settle()
    expect(s.reported()).toEqual(['a 0-10000 [0]'])
    // On its own, 8 s would be a session [8 s, 18 s), open till 23 s; but it is within the gap of
    // a's visit at 0, whose session was reported: it belongs to a closed session, so it is late.
    await s.visit('a', 8_000)
    // The same for 1 s (alone [1 s, 11 s), open till 16 s).
    await s.visit('a', 1_000)
    // 12 s is 12 s after the closed session's visit: a new session, well within its grace.
    await s.visit('a', 12_000)
    await t.settle()
    expect(s.lateEvents()).toBe(2)
    expect(await windowsOf(s.view, 'a')).toEqual([[12_000, 22_000, [12_000]]])
    expect(s.reported()).toEqual(['a 0-10000 [0]'])
    expect(t.deadLetters(s.agent)).toEqual([])
  })

  it("late events go to the agent's dead letters with LATE_EVENT when the table says so", async () => {
    const s = visitsPerSession({ graceMs: 5 * SECOND, lateEvents: 'deadLetter' })
    const t = await apps.start(s.app)
    await s.visit('a', 0)
    await s.visit('b', 30_000)
    // 2 s: within the gap of a's reported session, and alone [2 s, 12 s) closed at 17 s anyway.
    await s.visit('a', 2_000)
    await s.visit('a', 29_000)
    await t.settle()
    const dead = t.deadLetters(s.agent)
    expect(dead).toHaveLength(1)
    expect(dead[0]).toMatchObject({ code: 'LATE_EVENT', sourceOffset: 2 })
    expect(dead[0]!.error).toContain('table visit-sessions')
    expect(await windowsOf(s.view, 'a')).toEqual([[29_000, 39_000, [29_000]]])
    expect(s.reported()).toEqual(['a 0-10000 [0]'])
  })

  it('relativeToNow: sessions by the app clock when the write happens, whatever the event carries', async () => {
    const app = new App({ id: 'sessions-now', logger: 'silent' })
    const visits = app.topic<string, Visit>('visits', { partitions: 1 })
    const view = app
      .table<string, number>('visits-now', { default: () => 0, partitions: 1 })
      .session(GAP, { merge: (a, b) => a + b })
      .relativeToNow()
    app.agent(visits, async (stream) => {
      for await (const v of stream) await view.update(v.user, (n) => n + 1)
    })
    const t = await apps.start(app, { now: 1_000_000 })
    await t.send(visits, { key: 'a', value: { user: 'a', at: 0 } })
    await t.advance(GAP - 1)
    await t.send(visits, { key: 'a', value: { user: 'a', at: 0 } })
    await t.advance(GAP)
    await t.send(visits, { key: 'a', value: { user: 'a', at: 0 } })
    await t.settle()
    expect((await view.items('a')).map(([w, n]) => [w.start - 1_000_000, w.end - 1_000_000, n])).toEqual([
      [0, 2 * GAP - 1, 2],
      [2 * GAP - 1, 3 * GAP - 1, 1],
    ])
    expect(await view.now('a')).toBe(1)
  })

  it('a crash mid-stream under exactly-once resumes exactly: every session once, with its exact visits', async () => {
    const s = visitsPerSession({ graceMs: 5 * SECOND, guarantee: 'exactly_once' })
    const events = burstyVisits()
    const t = await apps.start(s.app)
    const beforeCrash = await s.sendAcrossCrash(events, s.visit, { commitAt: 90, crashAt: 130 })
    await t.advance(60 * SECOND)
    // onWindowClose is at least once: sessions closed after the last commit come again, the same.
    const unique = [...new Set(s.reported())]
    expect(unique).toEqual(expectedSessions(events))
    expect(beforeCrash).toBeGreaterThan(0)
    expect(s.lateEvents()).toBe(0)
  })
})

/**
 * 200 visits of four users in four bursts a minute apart (one visit a second within a burst), each
 * block of five sent in reverse: out of order by up to 4 s, within the 5 s grace.
 */
function burstyVisits(): [string, number][] {
  const inOrder: [string, number][] = []
  for (let i = 0; i < 200; i++) inOrder.push([`u${i % 4}`, i * SECOND + Math.floor(i / 50) * 60 * SECOND])
  return reversedBlocks(inOrder, 5)
}

/**
 * The sessions of the visits, worked out the plain way: each user's times sorted, cut where two
 * are GAP or more apart; reported in order of end (then start, then user), with the times in the
 * order they were counted.
 */
function expectedSessions(events: [string, number][]): string[] {
  const sessions: { user: string; start: number; end: number; times: number[] }[] = []
  for (const user of new Set(events.map(([u]) => u))) {
    const times = events.filter(([u]) => u === user).map(([, at]) => at)
    const sorted = [...times].sort((a, b) => a - b)
    let first = 0
    for (let i = 1; i <= sorted.length; i++) {
      if (i < sorted.length && sorted[i]! - sorted[i - 1]! < GAP) continue
      const [start, last] = [sorted[first]!, sorted[i - 1]!]
      sessions.push({ user, start, end: last + GAP, times: times.filter((x) => x >= start && x <= last) })
      first = i
    }
  }
  sessions.sort((a, b) => a.end - b.end || a.start - b.start || (a.user < b.user ? -1 : 1))
  return sessions.map((x) => `${x.user} ${x.start}-${x.end} [${x.times.join(',')}]`)
}
