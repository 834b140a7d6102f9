import { describe, expect, it } from 'vitest'
import { LatencySeries } from './latencySeries.js'
import { Monitor } from './monitor.js'
import type { MonitorSnapshot } from './monitorSnapshot.js'
import { RateCounter } from './rateCounter.js'
import type { AgentProgress, StreamEventInfo } from './sensor.js'
import { SensorSet } from './sensorSet.js'

function clock(start = 0): { now: () => number; advance: (ms: number) => void; set: (ms: number) => void } {
  let t = start
  return {
    now: () => t,
    advance: (ms) => {
      t += ms
    },
    set: (ms) => {
      t = ms
    },
  }
}

function ev(stream: string, offset = 0, topic = 'hits', partition = 0): StreamEventInfo {
  return { stream, topic, partition, offset }
}

describe('Monitor', () => {
  it('starts empty', () => {
    const s = new Monitor({ now: () => 0 }).snapshot()
    expect(s.messages.receivedTotal).toBe(0)
    expect(s.events.runtime).toEqual({ count: 0, avg: 0, p50: 0, p99: 0, max: 0 })
    expect(s.partitions).toEqual([])
    expect(s.recovery).toEqual({ recovering: false, partitions: [] })
    expect(s.agents).toEqual({})
    expect(s.rates).toEqual({
      windowMs: 10_000,
      eventsPerSec: 0,
      messagesReceivedPerSec: 0,
      messagesSentPerSec: 0,
    })
  })

  it('counts messages received and sent, in total and per topic', () => {
    const m = new Monitor({ now: () => 0 })
    m.onMessageIn({ topic: 'a', partition: 0 }, 0, 10)
    m.onMessageIn({ topic: 'a', partition: 1 }, 0, 20)
    m.onMessageIn({ topic: 'b', partition: 0 }, 5, 30)
    m.onMessageOut({ topic: 'a', partition: 0 }, 0)
    m.onSendInitiated('out', 7)
    m.onSendInitiated('out', 8)
    m.onSendInitiated('other', 1)

    const { messages } = m.snapshot()
    expect(messages).toEqual({
      receivedTotal: 3,
      receivedBytesTotal: 60,
      receivedByTopic: { a: 2, b: 1 },
      active: 2,
      sentTotal: 3,
      sentBytesTotal: 16,
      sentByTopic: { out: 2, other: 1 },
    })
  })

  it('counts events per stream, with active = in - out and runtime stats', () => {
    const c = clock()
    const m = new Monitor({ now: c.now })
    const s1 = m.onStreamEventIn(ev('count', 1))
    m.onStreamEventIn(ev('count', 2))
    const s3 = m.onStreamEventIn(ev('filter', 1))
    c.advance(4)
    m.onStreamEventOut(ev('count', 1), s1)
    c.advance(6)
    m.onStreamEventOut(ev('filter', 1), s3)

    const { events } = m.snapshot()
    expect(events.total).toBe(3)
    expect(events.active).toBe(1)
    expect(events.runtime).toEqual({ count: 2, avg: 7, p50: 4, p99: 10, max: 10 })
    expect(events.byStream.count).toEqual({
      total: 2,
      active: 1,
      runtime: { count: 1, avg: 4, p50: 4, p99: 4, max: 4 },
    })
    expect(events.byStream.filter?.active).toBe(0)
    expect(events.byStream.filter?.runtime.max).toBe(10)
  })

  it('times about eventTimingsPerSec events per second, and counts every event', () => {
    const c = clock()
    const m = new Monitor({ now: c.now, eventTimingsPerSec: 1000 })
    // 5 s at 100 000 events/s (10 µs apart), each taking 2 ms (the clock is moved to read the
    // end of a timed event 2 ms later, then back).
    for (let i = 0; i < 500_000; i++) {
      const state = m.onStreamEventIn(ev('count'))
      c.advance(0.01)
      const timed = typeof state === 'number'
      if (timed) c.advance(2)
      m.onStreamEventOut(ev('count'), state)
      if (timed) c.advance(-2)
    }
    const { events, rates } = m.snapshot()
    expect(events.total).toBe(500_000)
    expect(events.active).toBe(0)
    // Every one of the first 100 ms (10 000), before the rate is known; then about 1000 a second.
    expect(events.runtime.count).toBeGreaterThan(14_000)
    expect(events.runtime.count).toBeLessThan(16_000)
    expect(events.runtime.p50).toBeCloseTo(2.01)
    expect(rates.eventsPerSec).toBeCloseTo(100_000, -2)
  })

  it('times every event below eventTimingsPerSec, and every one with Infinity', () => {
    const c = clock()
    const slow = new Monitor({ now: c.now })
    const all = new Monitor({ now: c.now, eventTimingsPerSec: Number.POSITIVE_INFINITY })
    for (let i = 0; i < 1000; i++) {
      const a = slow.onStreamEventIn(ev('count'))
      const b = all.onStreamEventIn(ev('count'))
      c.advance(i % 2 === 0 ? 1 : 0.001)
      slow.onStreamEventOut(ev('count'), a)
      all.onStreamEventOut(ev('count'), b)
    }
    // 1000 events in about half a second: 2000/s, below the default 10 000.
    expect(slow.snapshot().events.runtime.count).toBe(1000)
    expect(all.snapshot().events.runtime.count).toBe(1000)
    expect(() => new Monitor({ eventTimingsPerSec: 0 })).toThrow(/eventTimingsPerSec/)
  })

  it('ignores a state it did not produce instead of recording a bogus latency', () => {
    const m = new Monitor({ now: () => 5 })
    m.onStreamEventIn(ev('count'))
    m.onStreamEventOut(ev('count'), undefined)
    m.onSendCompleted('not a time', 'out')
    const s = m.snapshot()
    expect(s.events.active).toBe(0)
    expect(s.events.runtime.count).toBe(0)
    expect(s.sends.total).toBe(1)
    expect(s.sends.latency.count).toBe(0)
  })

  it('counts table gets, sets, deletes and late events per table', () => {
    const m = new Monitor()
    m.onTableGet('counts', 'a')
    m.onTableGet('counts', 'b')
    m.onTableSet('counts', 'a', 1)
    m.onTableDelete('counts', 'a')
    m.onTableSet('windows', 'x', 1)
    m.onLateEvent('windows')
    m.onLateEvent('windows')
    expect(m.snapshot().tables).toEqual({
      counts: { gets: 2, sets: 1, deletes: 1, lateEvents: 0 },
      windows: { gets: 0, sets: 1, deletes: 0, lateEvents: 2 },
    })
  })

  it('measures commits, sends, assignments and rebalances', () => {
    const c = clock()
    const m = new Monitor({ now: c.now })

    const commit = m.onCommitInitiated()
    c.advance(12)
    m.onCommitCompleted(commit, [])

    const ok = m.onSendInitiated('out', 1)
    const failed = m.onSendInitiated('out', 1)
    m.onSendInitiated('other', 1)
    c.advance(3)
    m.onSendCompleted(ok, 'out')
    m.onSendError(failed, 'out', new Error('broker down'))

    const assignment = m.onAssignmentStart([{ topic: 'hits', partition: 0 }])
    c.advance(50)
    m.onAssignmentCompleted(assignment, [{ topic: 'hits', partition: 0 }])
    m.onAssignmentError(m.onAssignmentStart([]), new Error('x'))

    const rebalance = m.onRebalanceStart([])
    expect(m.snapshot().rebalances.inProgress).toBe(true)
    c.advance(100)
    m.onRebalanceEnd(rebalance)

    const s = m.snapshot()
    expect(s.commits).toEqual({ total: 1, latency: { count: 1, avg: 12, p50: 12, p99: 12, max: 12 } })
    expect(s.sends.total).toBe(1)
    expect(s.sends.errors).toBe(1)
    expect(s.sends.inFlight).toBe(1)
    expect(s.sends.latency.max).toBe(3)
    expect(s.sends.byTopic.out).toEqual({
      total: 1,
      errors: 1,
      latency: { count: 1, avg: 3, p50: 3, p99: 3, max: 3 },
    })
    expect(s.sends.byTopic.other).toEqual({
      total: 0,
      errors: 0,
      latency: { count: 0, avg: 0, p50: 0, p99: 0, max: 0 },
    })
    expect(s.assignments).toEqual({
      total: 1,
      errors: 1,
      latency: { count: 1, avg: 50, p50: 50, p99: 50, max: 50 },
    })
    expect(s.rebalances).toEqual({
      total: 1,
      inProgress: false,
      latency: { count: 1, avg: 100, p50: 100, p99: 100, max: 100 },
    })
  })

  it('counts web requests by status, dead-lettered messages and skips', () => {
    const m = new Monitor()
    m.onWebRequest('GET', '/stats', 200, 2)
    m.onWebRequest('GET', '/stats', 200, 4)
    m.onWebRequest('GET', '/tables/x/y', 404, 1)
    m.onDlq({ topic: 'hits', partition: 0, offset: 1 }, 'app-hits-dlq', 'decode')
    m.onDlq({ topic: 'hits', partition: 1, offset: 9 }, 'app-hits-dlq', 'agent')
    m.onDlq({ topic: 'clicks', partition: 0, offset: 2 }, 'shared-dlq', 'agent')
    m.onSkip('count', new Error('x'))
    m.onSkip('count', new Error('y'))
    m.onSkip('filter', new Error('z'))

    const s = m.snapshot()
    expect(s.web).toEqual({
      total: 3,
      byStatus: { '200': 2, '404': 1 },
      latency: { count: 3, avg: 7 / 3, p50: 2, p99: 4, max: 4 },
    })
    expect(s.dlq).toEqual({
      total: 3,
      byDlqTopic: { 'app-hits-dlq': 2, 'shared-dlq': 1 },
      bySourceTopic: { hits: 2, clicks: 1 },
    })
    expect(s.skips).toEqual({ total: 3, byStream: { count: 2, filter: 1 } })
  })

  it('reports recovery progress per table partition and whether any is still recovering', () => {
    const m = new Monitor()
    m.onRecoveryProgress('counts', 1, 0, 100)
    m.onRecoveryProgress('counts', 0, 50, 100)
    m.onRecoveryProgress('users', 0, 10, 10)
    expect(m.snapshot().recovery).toEqual({
      recovering: true,
      partitions: [
        { table: 'counts', partition: 0, done: 50, total: 100 },
        { table: 'counts', partition: 1, done: 0, total: 100 },
        { table: 'users', partition: 0, done: 10, total: 10 },
      ],
    })
    m.onRecoveryProgress('counts', 0, 100, 100)
    m.onRecoveryProgress('counts', 1, 100, 100)
    expect(m.snapshot().recovery.recovering).toBe(false)
    expect(m.recovering).toBe(false)
  })

  describe('offsets and lag', () => {
    const tp = { topic: 'hits', partition: 0 }

    it('tracks read, committed and end offsets and lag = end - committed', () => {
      const m = new Monitor()
      m.onOffsets(tp, { end: 100 })
      m.onMessageIn(tp, 41, 1)
      m.onCommitCompleted(m.onCommitInitiated(), [{ ...tp, offset: 40 }])
      expect(m.snapshot().partitions).toEqual([
        { topic: 'hits', partition: 0, read: 41, committed: 40, end: 100, lag: 60 },
      ])
    })

    it('counts lag from 0 while nothing is committed', () => {
      const m = new Monitor()
      m.onOffsets(tp, { end: 25 })
      expect(m.snapshot().partitions[0]).toMatchObject({ read: -1, committed: -1, end: 25, lag: 25 })
    })

    it('raises the end offset to read + 1 when reading gets ahead of the last reported end', () => {
      const m = new Monitor()
      m.onOffsets(tp, { end: 10, committed: 5 })
      m.onMessageIn(tp, 14, 1)
      expect(m.snapshot().partitions[0]).toMatchObject({ read: 14, end: 15, lag: 10 })
      // A stale fetch reporting an older end does not pull it below what was read.
      m.onOffsets(tp, { end: 12 })
      expect(m.snapshot().partitions[0]).toMatchObject({ end: 15, lag: 10 })
      m.onOffsets(tp, { end: 30, committed: 15 })
      expect(m.snapshot().partitions[0]).toMatchObject({ end: 30, committed: 15, lag: 15 })
    })

    it('reports 0 lag once everything is committed, and lists partitions sorted', () => {
      const m = new Monitor()
      m.onMessageIn({ topic: 'b', partition: 0 }, 9, 1)
      m.onMessageIn({ topic: 'a', partition: 2 }, 0, 1)
      m.onMessageIn({ topic: 'a', partition: 10 }, 0, 1)
      m.onOffsets({ topic: 'b', partition: 0 }, { committed: 10 })
      const s = m.snapshot()
      expect(s.partitions.map((p) => `${p.topic}-${p.partition}`)).toEqual(['a-2', 'a-10', 'b-0'])
      expect(s.partitions[2]).toEqual({ topic: 'b', partition: 0, read: 9, committed: 10, end: 10, lag: 0 })
    })

    it('learns a partition from onOffsets alone (e.g. reported on fetch before any message)', () => {
      const m = new Monitor()
      m.onOffsets(tp, { read: 3, committed: 2 })
      expect(m.snapshot().partitions).toEqual([
        { topic: 'hits', partition: 0, read: 3, committed: 2, end: 4, lag: 2 },
      ])
    })
  })

  describe('rates', () => {
    it('averages events per second over the window', () => {
      const c = clock()
      const m = new Monitor({ now: c.now, rateWindowMs: 10_000 })
      // 20 seconds at 10 events/s, 5 received messages/s, 2 sends/s.
      for (let second = 0; second < 20; second++) {
        for (let i = 0; i < 10; i++) {
          c.set(second * 1000 + i * 100)
          m.onStreamEventIn(ev('count'))
          if (i % 2 === 0) m.onMessageIn({ topic: 'hits', partition: 0 }, second * 10 + i, 1)
          if (i % 5 === 0) m.onSendInitiated('out', 1)
        }
      }
      c.set(20_000)
      expect(m.snapshot().rates).toEqual({
        windowMs: 10_000,
        eventsPerSec: 10,
        messagesReceivedPerSec: 5,
        messagesSentPerSec: 2,
      })
    })

    it('counts received messages in the rate by the next clock reading (a batch late at most)', () => {
      const c = clock()
      const m = new Monitor({ now: c.now, rateWindowMs: 10_000 })
      const tp = { topic: 'hits', partition: 0 }
      // 30 messages in second 0 that never become events (dead letters), reported by onOffsets.
      for (let i = 0; i < 30; i++) m.onMessageIn(tp, i, 1)
      m.onOffsets(tp, { read: 29 })
      // 20 more in second 12, outside that window: counted at the snapshot.
      c.set(12_000)
      for (let i = 30; i < 50; i++) m.onMessageIn(tp, i, 1)
      c.set(15_000)
      // The window holds seconds 6..15 (9 s so far): the 20 of second 12, not the 30 of second 0.
      expect(m.snapshot().rates.messagesReceivedPerSec).toBeCloseTo(20 / 9)
      c.set(5000)
      const fresh = new Monitor({ now: c.now, rateWindowMs: 10_000 })
      for (let i = 0; i < 30; i++) fresh.onMessageIn(tp, i, 1)
      fresh.onOffsets(tp, { read: 29 })
      c.set(30_000)
      // Added at the clock reading of second 5: out of the window at 30 s.
      expect(fresh.snapshot().rates.messagesReceivedPerSec).toBe(0)
    })

    it('forgets events older than the window', () => {
      const c = clock()
      const m = new Monitor({ now: c.now, rateWindowMs: 5000 })
      for (let i = 0; i < 100; i++) m.onStreamEventIn(ev('count'))
      c.set(2500)
      expect(m.snapshot().rates.eventsPerSec).toBe(40)
      c.set(60_000)
      expect(m.snapshot().rates.eventsPerSec).toBe(0)
    })

    it('does not under-report while the monitor is younger than the window', () => {
      const c = clock(1_000_000)
      const m = new Monitor({ now: c.now, rateWindowMs: 60_000 })
      for (let i = 0; i < 40; i++) {
        c.advance(50)
        m.onStreamEventIn(ev('count'))
      }
      // 40 events in 2 s: 20/s, not 40 / 60 s.
      expect(m.snapshot().rates.eventsPerSec).toBe(20)
    })

    it('RateCounter reuses a bucket only for its own second', () => {
      const r = new RateCounter(3000)
      r.add(0, 5)
      r.add(3000, 1) // same ring slot as second 0, three seconds later
      expect(r.rate(3000, 0)).toBeCloseTo(1 / 2)
    })
  })

  it('keeps a bounded latency sample but an all-time count', () => {
    const series = new LatencySeries(100)
    for (let ms = 1; ms <= 1000; ms++) series.add(ms)
    // Only the last 100 samples (901..1000) remain.
    expect(series.stats()).toEqual({ count: 1000, avg: 950.5, p50: 950, p99: 999, max: 1000 })
  })

  it('computes nearest-rank percentiles', () => {
    const series = new LatencySeries(1000)
    for (const ms of [5, 1, 4, 2, 3]) series.add(ms)
    expect(series.stats()).toEqual({ count: 5, avg: 3, p50: 3, p99: 5, max: 5 })
  })

  it('reset() forgets everything', () => {
    const c = clock()
    const m = new Monitor({ now: c.now })
    const empty = m.snapshot()
    m.onMessageIn({ topic: 'hits', partition: 0 }, 1, 1)
    m.onStreamEventIn(ev('count'))
    m.onTableGet('counts', 1)
    m.onDlq({ topic: 'hits', partition: 0, offset: 1 }, 'dlq', 'x')
    m.onRecoveryProgress('counts', 0, 1, 2)
    c.advance(500)
    m.reset()
    expect(m.snapshot()).toEqual(empty)
  })

  it('reset() also restarts the event timing: afterwards it times the events a new monitor would', () => {
    const c = clock()
    const m = new Monitor({ now: c.now, eventTimingsPerSec: 10 })
    // Many events in no time: counted towards the next rate estimate, which never came.
    for (let i = 0; i < 1000; i++) m.onStreamEventOut(ev('count'), m.onStreamEventIn(ev('count')))
    m.reset()
    const fresh = new Monitor({ now: c.now, eventTimingsPerSec: 10 })
    // 100 ms later, 10 events: the first estimate (1 event in 100 ms) is 10 a second, so all are timed.
    c.advance(100)
    for (const monitor of [m, fresh]) {
      for (let i = 0; i < 10; i++) {
        const state = monitor.onStreamEventIn(ev('count'))
        c.advance(1)
        monitor.onStreamEventOut(ev('count'), state)
        c.advance(-1)
      }
    }
    expect(fresh.snapshot().events.runtime.count).toBe(10)
    expect(m.snapshot().events.runtime).toEqual(fresh.snapshot().events.runtime)
  })

  it('counts web requests by method, route and status, and dead letters by source and dlq topic', () => {
    const m = new Monitor()
    m.onWebRequest('GET', '/stats', 200, 2)
    m.onWebRequest('GET', '/tables/:name/:key', 404, 1)
    m.onWebRequest('GET', '/stats', 200, 4)
    m.onWebRequest('POST', '/stats', 200, 1)
    m.onDlq({ topic: 'hits', partition: 0, offset: 1 }, 'app-hits-dlq', 'decode')
    m.onDlq({ topic: 'clicks', partition: 0, offset: 2 }, 'shared-dlq', 'agent')
    m.onDlq({ topic: 'hits', partition: 1, offset: 9 }, 'app-hits-dlq', 'agent')
    m.onDlq({ topic: 'hits', partition: 1, offset: 10 }, 'shared-dlq', 'agent')

    const s = m.snapshot()
    expect(s.webRequests).toEqual([
      { method: 'GET', route: '/stats', status: 200, total: 2 },
      { method: 'GET', route: '/tables/:name/:key', status: 404, total: 1 },
      { method: 'POST', route: '/stats', status: 200, total: 1 },
    ])
    expect(s.dlqMessages).toEqual([
      { topic: 'hits', dlqTopic: 'app-hits-dlq', total: 2 },
      { topic: 'clicks', dlqTopic: 'shared-dlq', total: 1 },
      { topic: 'hits', dlqTopic: 'shared-dlq', total: 1 },
    ])
    // A copy: changing the snapshot changes no count.
    s.webRequests[0]!.total = 99
    expect(m.snapshot().webRequests[0]?.total).toBe(2)
    m.reset()
    expect(m.snapshot().webRequests).toEqual([])
    expect(m.snapshot().dlqMessages).toEqual([])
  })

  it('produces a JSON-serialisable snapshot, including awkward topic names', () => {
    const c = clock()
    const m = new Monitor({ now: c.now })
    const tp = { topic: '__proto__', partition: 0 }
    m.onMessageIn(tp, 3, 10)
    m.onMessageIn({ topic: 'hits', partition: 1 }, 3, 10)
    m.onStreamEventOut(ev('count'), m.onStreamEventIn(ev('count')))
    m.onSendCompleted(m.onSendInitiated('out', 1), 'out')
    m.onTableSet('counts', 'k', 1)
    m.onWebRequest('GET', '/', 200, 1.5)
    m.onDlq({ ...tp, offset: 3 }, 'dlq', 'decode')
    m.onSkip('count', new Error('x'))
    m.onRecoveryProgress('counts', 0, 1, 2)
    c.advance(1500)

    const s: MonitorSnapshot = m.snapshot()
    expect(JSON.parse(JSON.stringify(s))).toStrictEqual(s)
    // An own key, not the prototype setter: the topic is counted, not lost.
    expect(Object.entries(s.messages.receivedByTopic)).toEqual([
      ['__proto__', 1],
      ['hits', 1],
    ])
  })

  it("reads agents from the latest worker's probe when the snapshot is taken, and keeps it across reset()", () => {
    const m = new Monitor()
    let first: AgentProgress[] = [{ agent: 'count', oldestEventAgeMs: 0, queued: 0 }]
    new SensorSet({ sensors: [m] }).onWorkerStarted({ agents: () => first })
    expect(m.snapshot().agents).toEqual({ count: { oldestEventAgeMs: 0, queued: 0 } })
    first = [{ agent: 'count', oldestEventAgeMs: 1200, queued: 3 }]
    expect(m.snapshot().agents).toEqual({ count: { oldestEventAgeMs: 1200, queued: 3 } })
    m.reset()
    expect(m.snapshot().agents).toEqual({ count: { oldestEventAgeMs: 1200, queued: 3 } })
    // A restarted worker hands over a new probe: only it is read.
    m.onWorkerStarted({ agents: () => [{ agent: '__proto__', oldestEventAgeMs: 5, queued: 1 }] })
    expect(Object.entries(m.snapshot().agents)).toEqual([['__proto__', { oldestEventAgeMs: 5, queued: 1 }]])
  })

  it('works behind a SensorSet', () => {
    const c = clock()
    const m = new Monitor({ now: c.now })
    const set = new SensorSet({ sensors: [m] })
    const state = set.onStreamEventIn(ev('count'))
    c.advance(8)
    set.onStreamEventOut(ev('count'), state)
    expect(m.snapshot().events.byStream.count?.runtime.max).toBe(8)
  })

  it('can be extended by a subclass that sees each hook and reads the counters', () => {
    class CountingMonitor extends Monitor {
      gauges: number[] = []
      override onMessageIn(...args: Parameters<Monitor['onMessageIn']>): void {
        super.onMessageIn(...args)
        this.gauges.push(this.messagesReceived)
      }
    }
    const m = new CountingMonitor()
    m.onMessageIn({ topic: 'hits', partition: 0 }, 0, 1)
    m.onMessageIn({ topic: 'hits', partition: 0 }, 1, 1)
    expect(m.gauges).toEqual([1, 2])
  })
})
