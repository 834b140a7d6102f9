import { describe, expect, it } from 'vitest'
import { deferred } from '../../base/deferred.js'
import { BrokerError, MephistoError } from '../../base/errors.js'
import type { ConsumerHandlers, RawRecord, RecordBatch, TopicPartition } from '../transport.js'
import { MemoryBroker, memoryBroker } from './memoryBroker.js'

const buf = (s: string): Buffer => Buffer.from(s)
const tp = (topic: string, partition: number): TopicPartition => ({ topic, partition })

/** Lets the broker run (microtasks and immediates) until it has nothing left to deliver. */
async function settle(broker: MemoryBroker): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    await new Promise((resolve) => setImmediate(resolve))
    if (broker.idle()) return
  }
  throw new Error('broker did not settle')
}

/** Handlers that record what they see; `log` interleaves every call of every recorder sharing it. */
function recorder(name: string, log: string[] = []) {
  const batches: RecordBatch[] = []
  const fmt = (tps: TopicPartition[]): string => tps.map((t) => `${t.topic}${t.partition}`).join(',')
  const handlers: ConsumerHandlers = {
    async onAssign(tps) {
      log.push(`${name} assign ${fmt(tps)}`)
    },
    async onRevoke(tps) {
      log.push(`${name} revoke ${fmt(tps)}`)
    },
    async onBatch(batch) {
      batches.push(batch)
    },
  }
  const records = (): RawRecord[] => batches.flatMap((b) => b.records)
  const values = (topic?: string, partition?: number): string[] =>
    records()
      .filter(
        (r) =>
          (topic === undefined || r.topic === topic) &&
          (partition === undefined || r.partition === partition),
      )
      .map((r) => r.value!.toString())
  return { handlers, batches, log, records, values }
}

function fill(broker: MemoryBroker, topic: string, partition: number, values: string[]): void {
  for (const v of values) broker.append(topic, partition, { key: null, value: buf(v) })
}

describe('MemoryBroker logs', () => {
  it('appends records with offsets from 0 per partition, timestamps and headers', () => {
    const broker = new MemoryBroker({ now: () => 1234 })
    broker.createTopic({ name: 't', partitions: 2 })
    expect(broker.append('t', 0, { key: buf('k'), value: buf('a') })).toBe(0)
    expect(broker.append('t', 0, { key: null, value: buf('b'), timestamp: 99 })).toBe(1)
    const headers = { h: buf('x') }
    expect(broker.append('t', 1, { key: null, value: buf('c'), headers })).toBe(0)
    headers.h = buf('changed after send')

    expect(broker.endOffsets('t')).toEqual(
      new Map([
        [0, 2],
        [1, 1],
      ]),
    )
    expect(broker.startOffsets('t')).toEqual(
      new Map([
        [0, 0],
        [1, 0],
      ]),
    )
    const [a, b] = broker.records('t', 0)
    expect(a).toMatchObject({
      topic: 't',
      partition: 0,
      offset: 0,
      timestamp: 1234,
      key: buf('k'),
      value: buf('a'),
    })
    expect(b).toMatchObject({ offset: 1, timestamp: 99, key: null, headers: {} })
    expect(broker.records('t', 1)[0]!.headers).toEqual({ h: buf('x') })
  })

  it('refuses unknown topics and partitions instead of creating them', () => {
    const broker = new MemoryBroker()
    broker.createTopic({ name: 't', partitions: 2 })
    expect(() => broker.append('nope', 0, { key: null, value: null })).toThrow(BrokerError)
    expect(() => broker.append('nope', 0, { key: null, value: null })).toThrow(/"nope"/)
    expect(() => broker.append('t', 2, { key: null, value: null })).toThrow(/Partition 2 of topic "t"/)
  })

  it('keeps an existing topic as it is', () => {
    const broker = new MemoryBroker()
    expect(broker.createTopic({ name: 't', partitions: 2 })).toBe(true)
    expect(broker.createTopic({ name: 't', partitions: 8 })).toBe(false)
    expect(broker.partitionCount('t')).toBe(2)
  })

  it('shares one broker per name through the registry', () => {
    expect(memoryBroker('registry-a')).toBe(memoryBroker('registry-a'))
    expect(memoryBroker('registry-a')).not.toBe(memoryBroker('registry-b'))
    expect(memoryBroker()).toBe(memoryBroker('default'))
    expect(memoryBroker('')).toBe(memoryBroker('default'))
    expect(memoryBroker().name).toBe('default')
    expect(new MemoryBroker()).not.toBe(new MemoryBroker())
  })
})

describe('MemoryBroker compaction', () => {
  const compacted = (broker: MemoryBroker, config?: Record<string, string>): void => {
    broker.createTopic({ name: 'c', partitions: 1, compacted: true, ...(config ? { config } : {}) })
  }

  it('keeps the latest record per key at its original offset', () => {
    const broker = new MemoryBroker()
    compacted(broker)
    const put = (k: string, v: string | null): number =>
      broker.append('c', 0, { key: buf(k), value: v === null ? null : buf(v) })
    put('a', 'a1') // 0
    put('b', 'b1') // 1
    put('a', 'a2') // 2
    put('c', 'c1') // 3
    put('b', null) // 4: tombstone
    put('a', 'a3') // 5
    put('d', 'd1') // 6
    broker.compact('c')

    const kept = broker.records('c', 0).map((r) => [r.offset, r.key!.toString(), r.value?.toString() ?? null])
    expect(kept).toEqual([
      [3, 'c', 'c1'],
      [4, 'b', null],
      [5, 'a', 'a3'],
      [6, 'd', 'd1'],
    ])
    expect(broker.endOffsets('c').get(0)).toBe(7)
    expect(broker.startOffsets('c').get(0)).toBe(3)
    // Reads by offset land on the next record that survived (the log is sparse now).
    expect(broker.records('c', 0, 1, 7, 2).map((r) => r.offset)).toEqual([3, 4])
    expect(broker.records('c', 0, 5, 6).map((r) => r.offset)).toEqual([5])
    expect(put('e', 'e1')).toBe(7)
    expect(broker.records('c', 0, 6).map((r) => r.offset)).toEqual([6, 7])
  })

  it('drops tombstones older than delete.retention.ms when the topic sets it', () => {
    let now = 0
    const broker = new MemoryBroker({ now: () => now })
    compacted(broker, { 'delete.retention.ms': '1000' })
    broker.append('c', 0, { key: buf('a'), value: buf('1') })
    broker.append('c', 0, { key: buf('a'), value: null })
    broker.append('c', 0, { key: buf('b'), value: null })
    now = 500
    broker.compact('c')
    expect(broker.records('c', 0).map((r) => r.offset)).toEqual([1, 2])
    now = 5000
    broker.compact('c')
    expect(broker.records('c', 0)).toEqual([])
    expect(broker.startOffsets('c').get(0)).toBe(3)
    expect(broker.endOffsets('c').get(0)).toBe(3)
  })

  it('compacts by itself as a partition grows', () => {
    const broker = new MemoryBroker()
    compacted(broker)
    for (let i = 0; i < 10_000; i++) broker.append('c', 0, { key: buf(`k${i % 10}`), value: buf(String(i)) })
    const records = broker.records('c', 0)
    expect(records.length).toBeLessThanOrEqual(1001)
    // The latest value of every key is there, at its offset.
    expect(records.slice(-10).map((r) => [r.offset, r.value!.toString()])).toEqual(
      Array.from({ length: 10 }, (_, i) => [9990 + i, String(9990 + i)]),
    )
  })

  it('refuses records without a key on a compacted topic, as Kafka does', () => {
    const broker = new MemoryBroker()
    broker.createTopic({ name: 'c', partitions: 1, config: { 'cleanup.policy': 'compact' } })
    expect(() => broker.append('c', 0, { key: null, value: buf('x') })).toThrow(/compacted/)
  })

  it('delivers a compacted log from the beginning to a new consumer', async () => {
    const broker = new MemoryBroker()
    compacted(broker)
    for (const [k, v] of [
      ['a', '1'],
      ['b', '2'],
      ['a', '3'],
    ] as const) {
      broker.append('c', 0, { key: buf(k), value: buf(v) })
    }
    broker.compact('c')
    const r = recorder('m')
    await broker.join('g', ['c'], r.handlers).ready
    await settle(broker)
    expect(r.records().map((x) => [x.offset, x.value!.toString()])).toEqual([
      [1, '2'],
      [2, '3'],
    ])
  })
})

describe('MemoryBroker delivery', () => {
  it('delivers each partition in offset order, in batches of at most maxBatchSize', async () => {
    const broker = new MemoryBroker()
    broker.createTopic({ name: 't', partitions: 2 })
    const r = recorder('m')
    await broker.join('g', ['t'], r.handlers, { maxBatchSize: 500 }).ready
    const values = Array.from({ length: 1200 }, (_, i) => String(i))
    fill(broker, 't', 0, values)
    fill(broker, 't', 1, values.slice(0, 3))
    await settle(broker)
    expect(r.values('t', 0)).toEqual(values)
    expect(r.values('t', 1)).toEqual(['0', '1', '2'])
    expect(r.batches.filter((b) => b.partition === 0).map((b) => b.records.length)).toEqual([500, 500, 200])
    expect(r.batches.find((b) => b.partition === 0)!.highWatermark).toBe(1200)
    for (const batch of r.batches) {
      expect(batch.records.map((x) => x.offset)).toEqual(
        batch.records.map((_, i) => batch.records[0]!.offset + i),
      )
    }
  })

  it('never delivers inside append', async () => {
    const broker = new MemoryBroker()
    broker.createTopic({ name: 't', partitions: 1 })
    const r = recorder('m')
    await broker.join('g', ['t'], r.handlers).ready
    await settle(broker)
    fill(broker, 't', 0, ['a'])
    expect(r.batches).toHaveLength(0)
    expect(broker.idle()).toBe(false)
    await settle(broker)
    expect(r.values()).toEqual(['a'])
  })

  it('starts at the log end when fromBeginning is false', async () => {
    const broker = new MemoryBroker()
    broker.createTopic({ name: 't', partitions: 1 })
    fill(broker, 't', 0, ['old'])
    const r = recorder('m')
    await broker.join('g', ['t'], r.handlers, { fromBeginning: false }).ready
    fill(broker, 't', 0, ['new'])
    await settle(broker)
    expect(r.values()).toEqual(['new'])
  })

  it('applies backpressure per partition: a slow onBatch holds back only its partition', async () => {
    const broker = new MemoryBroker()
    broker.createTopic({ name: 't', partitions: 2 })
    const gate = deferred()
    const seen: string[] = []
    const member = broker.join('g', ['t'], {
      onAssign: async () => {},
      onRevoke: async () => {},
      onBatch: async (batch) => {
        for (const r of batch.records) seen.push(`${batch.partition}:${r.value}`)
        if (batch.partition === 0) await gate.promise
      },
    })
    await member.ready
    fill(broker, 't', 0, ['a'])
    fill(broker, 't', 1, ['x'])
    // A woken fetcher waits one turn to batch what is appended meanwhile: give it a few.
    for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve))
    fill(broker, 't', 0, ['b'])
    fill(broker, 't', 1, ['y'])
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve))
    expect(seen).toEqual(['0:a', '1:x', '1:y'])
    expect(broker.idle()).toBe(false)
    gate.resolve()
    await settle(broker)
    expect(seen).toEqual(['0:a', '1:x', '1:y', '0:b'])
  })

  it('pauses and resumes partitions', async () => {
    const broker = new MemoryBroker()
    broker.createTopic({ name: 't', partitions: 2 })
    const r = recorder('m')
    const member = broker.join('g', ['t'], r.handlers)
    await member.ready
    member.pause([tp('t', 0)])
    fill(broker, 't', 0, ['a', 'b'])
    fill(broker, 't', 1, ['x'])
    await settle(broker)
    // A paused partition with records waiting does not keep the broker busy.
    expect(broker.idle()).toBe(true)
    expect(r.values()).toEqual(['x'])
    member.resume([tp('t', 0)])
    expect(broker.idle()).toBe(false)
    await settle(broker)
    expect(r.values('t', 0)).toEqual(['a', 'b'])
  })

  it('is idle only when nothing is in flight and every partition is read to its end', async () => {
    const broker = new MemoryBroker()
    broker.createTopic({ name: 't', partitions: 1 })
    expect(broker.idle()).toBe(true)
    const gate = deferred()
    let assigning = deferred()
    const member = broker.join('g', ['t'], {
      onAssign: () => assigning.promise,
      onRevoke: async () => {},
      onBatch: () => gate.promise,
    })
    expect(broker.idle()).toBe(false) // rebalance pending
    await new Promise((resolve) => setImmediate(resolve))
    expect(broker.idle()).toBe(false) // onAssign in flight
    assigning.resolve()
    await member.ready
    assigning = deferred()
    expect(broker.idle()).toBe(true)
    fill(broker, 't', 0, ['a'])
    expect(broker.idle()).toBe(false) // records past the position
    await new Promise((resolve) => setImmediate(resolve))
    expect(broker.idle()).toBe(false) // onBatch in flight
    gate.resolve()
    await settle(broker)
    expect(broker.idle()).toBe(true)
  })
})

describe('MemoryBroker consumer groups', () => {
  it('co-partitions: partition p of every topic goes to the same member', async () => {
    const broker = new MemoryBroker()
    broker.createTopic({ name: 'a', partitions: 4 })
    broker.createTopic({ name: 'b', partitions: 4 })
    broker.createTopic({ name: 'c', partitions: 1 })
    const m1 = broker.join('g', ['a', 'b', 'c'], recorder('m1').handlers)
    const m2 = broker.join('g', ['a', 'b', 'c'], recorder('m2').handlers)
    await Promise.all([m1.ready, m2.ready])
    expect(m1.assignment()).toEqual([tp('a', 0), tp('a', 2), tp('b', 0), tp('b', 2), tp('c', 0)])
    expect(m2.assignment()).toEqual([tp('a', 1), tp('a', 3), tp('b', 1), tp('b', 3)])
  })

  it('reports ready to a member that gets no partition', async () => {
    const broker = new MemoryBroker()
    broker.createTopic({ name: 't', partitions: 1 })
    const log: string[] = []
    const m1 = broker.join('g', ['t'], recorder('m1', log).handlers)
    const m2 = broker.join('g', ['t'], recorder('m2', log).handlers)
    await Promise.all([m1.ready, m2.ready])
    expect(log.sort()).toEqual(['m1 assign t0', 'm2 assign '])
  })

  it('moves only what changes on a join, revoking before assigning', async () => {
    const broker = new MemoryBroker()
    broker.createTopic({ name: 'a', partitions: 4 })
    broker.createTopic({ name: 'b', partitions: 2 })
    const log: string[] = []
    const m1 = broker.join('g', ['a', 'b'], recorder('m1', log).handlers)
    await m1.ready
    const m2 = broker.join('g', ['a', 'b'], recorder('m2', log).handlers)
    await m2.ready
    // Sticky: m1 keeps partition numbers 0 and 1 (half of the four), m2 takes 2 and 3.
    expect(log).toEqual(['m1 assign a0,a1,a2,a3,b0,b1', 'm1 revoke a2,a3', 'm2 assign a2,a3'])
    expect(m1.assignment()).toEqual([tp('a', 0), tp('a', 1), tp('b', 0), tp('b', 1)])
  })

  it('on leave, awaits the leaver’s revoke before the others start at the committed offsets', async () => {
    const broker = new MemoryBroker()
    broker.createTopic({ name: 'a', partitions: 2 })
    broker.createTopic({ name: 'b', partitions: 2 })
    fill(broker, 'a', 1, ['a0', 'a1', 'a2'])
    fill(broker, 'b', 1, ['b0', 'b1'])
    const log: string[] = []
    const r1 = recorder('m1', log)
    const m1 = broker.join('g', ['a', 'b'], r1.handlers)
    const revoking = deferred()
    const r2 = recorder('m2', log)
    const m2 = broker.join('g', ['a', 'b'], {
      ...r2.handlers,
      async onRevoke(tps) {
        log.push('m2 revoke started')
        await revoking.promise
        // Commit in onRevoke, as the runtime does: the new owner starts here.
        m2.commit([
          { topic: 'a', partition: 1, offset: 2 },
          { topic: 'b', partition: 1, offset: 2 },
        ])
        await r2.handlers.onRevoke(tps)
      },
    })
    await Promise.all([m1.ready, m2.ready])
    await settle(broker)
    expect(r2.values()).toEqual(['a0', 'a1', 'a2', 'b0', 'b1'])

    const leaving = m2.leave()
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve))
    expect(log.at(-1)).toBe('m2 revoke started')
    expect(m1.assignment()).toEqual([tp('a', 0), tp('b', 0)])
    revoking.resolve()
    await leaving
    fill(broker, 'b', 1, ['b2'])
    await settle(broker)
    expect(log.slice(-2)).toEqual(['m2 revoke a1,b1', 'm1 assign a1,b1'])
    expect(m1.assignment()).toEqual([tp('a', 0), tp('a', 1), tp('b', 0), tp('b', 1)])
    expect(r1.values('a', 1)).toEqual(['a2'])
    expect(r1.values('b', 1)).toEqual(['b2'])
    expect(m2.assignment()).toEqual([])
  })

  it('on crash, calls no onRevoke and loses uncommitted progress', async () => {
    const broker = new MemoryBroker()
    broker.createTopic({ name: 't', partitions: 2 })
    fill(broker, 't', 1, ['0', '1', '2', '3'])
    const log: string[] = []
    const r1 = recorder('m1', log)
    const r2 = recorder('m2', log)
    const m1 = broker.join('g', ['t'], r1.handlers)
    const m2 = broker.join('g', ['t'], r2.handlers)
    await Promise.all([m1.ready, m2.ready])
    await settle(broker)
    expect(r2.values()).toEqual(['0', '1', '2', '3'])
    m2.commit([{ topic: 't', partition: 1, offset: 1 }])
    m2.crash()
    await settle(broker)
    expect(log).not.toContain('m2 revoke t1')
    expect(log.at(-1)).toBe('m1 assign t1')
    expect(r1.values('t', 1)).toEqual(['1', '2', '3'])
    // A crashed member cannot commit any more (it is fenced).
    expect(() => m2.commit([{ topic: 't', partition: 1, offset: 4 }])).toThrow(MephistoError)
    expect(broker.committedOffset('g', 't', 1)).toBe(1)
  })

  it('does not wait for a crashed member’s handler to finish its rebalance', async () => {
    const broker = new MemoryBroker()
    broker.createTopic({ name: 't', partitions: 2 })
    const m1 = broker.join('g', ['t'], recorder('m1').handlers)
    await m1.ready
    const r2 = recorder('m2')
    const m2 = broker.join('g', ['t'], { ...r2.handlers, onAssign: () => new Promise(() => {}) })
    await new Promise((resolve) => setImmediate(resolve))
    m2.crash()
    await m2.ready
    await settle(broker)
    expect(m1.assignment()).toEqual([tp('t', 0), tp('t', 1)])
  })

  it('refuses commits for partitions the member does not own', async () => {
    const broker = new MemoryBroker()
    broker.createTopic({ name: 't', partitions: 2 })
    const m1 = broker.join('g', ['t'], recorder('m1').handlers)
    const m2 = broker.join('g', ['t'], recorder('m2').handlers)
    await Promise.all([m1.ready, m2.ready])
    expect(() => m1.commit([{ topic: 't', partition: 1, offset: 3 }])).toThrow(/not assigned/)
    m1.commit([{ topic: 't', partition: 0, offset: 3 }])
    expect(broker.groupOffsets('g', 't')).toEqual(
      new Map([
        [0, 3],
        [1, -1],
      ]),
    )
  })

  it('stops delivering a revoked partition while letting an in-flight batch finish', async () => {
    const broker = new MemoryBroker()
    broker.createTopic({ name: 't', partitions: 2 })
    fill(broker, 't', 1, ['a'])
    const gate = deferred()
    const seen: string[] = []
    const m1 = broker.join('g', ['t'], {
      onAssign: async () => {},
      onRevoke: async () => {
        seen.push('revoke')
      },
      onBatch: async (batch) => {
        seen.push(`batch ${batch.partition}:${batch.records.map((r) => r.value).join('')}`)
        if (batch.partition === 1) await gate.promise
        seen.push(`done ${batch.partition}`)
      },
    })
    await m1.ready
    await new Promise((resolve) => setImmediate(resolve))
    fill(broker, 't', 1, ['b'])
    const r2 = recorder('m2')
    const m2 = broker.join('g', ['t'], r2.handlers)
    await m2.ready
    gate.resolve()
    await settle(broker)
    expect(seen).toEqual(['batch 1:a', 'revoke', 'done 1'])
    expect(r2.values()).toEqual(['a', 'b'])
  })

  it('serializes rebalances of a group', async () => {
    const broker = new MemoryBroker()
    broker.createTopic({ name: 't', partitions: 2 })
    const log: string[] = []
    const assigning = deferred()
    const r1 = recorder('m1', log)
    const m1 = broker.join('g', ['t'], {
      ...r1.handlers,
      async onAssign(tps) {
        await assigning.promise
        await r1.handlers.onAssign(tps)
      },
    })
    await new Promise((resolve) => setImmediate(resolve))
    const m2 = broker.join('g', ['t'], recorder('m2', log).handlers)
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve))
    expect(log).toEqual([])
    assigning.resolve()
    await Promise.all([m1.ready, m2.ready])
    expect(log).toEqual(['m1 assign t0,t1', 'm1 revoke t1', 'm2 assign t1'])
  })

  it('makes a member whose handler throws leave the group like a crash', async () => {
    const broker = new MemoryBroker()
    broker.createTopic({ name: 't', partitions: 2 })
    const r1 = recorder('m1')
    const m1 = broker.join('g', ['t'], r1.handlers)
    const m2 = broker.join('g', ['t'], {
      ...recorder('m2').handlers,
      onBatch: async () => {
        throw new Error('boom')
      },
    })
    await Promise.all([m1.ready, m2.ready])
    fill(broker, 't', 1, ['x'])
    await settle(broker)
    expect(m2.failure).toBeInstanceOf(BrokerError)
    await expect(m2.leave()).rejects.toThrow(/^boom \(onBatch\(t\[1\]\)/)
    expect(r1.values('t', 1)).toEqual(['x'])
  })

  it('rejects ready when the first onAssign throws', async () => {
    const broker = new MemoryBroker()
    broker.createTopic({ name: 't', partitions: 1 })
    const m = broker.join('g', ['t'], {
      ...recorder('m').handlers,
      onAssign: async () => {
        throw new Error('no')
      },
    })
    await expect(m.ready).rejects.toThrow(/^no \(onAssign/)
    await settle(broker)
  })

  it('refuses to join topics that do not exist', () => {
    const broker = new MemoryBroker()
    expect(() => broker.join('g', ['missing'], recorder('m').handlers)).toThrow(/"missing"/)
  })

  it('sets group offsets only while the group has no members', async () => {
    const broker = new MemoryBroker()
    broker.createTopic({ name: 't', partitions: 1 })
    broker.setGroupOffsets('g', [{ topic: 't', partition: 0, offset: 5 }])
    expect(broker.committedOffset('g', 't', 0)).toBe(5)
    const m = broker.join('g', ['t'], recorder('m').handlers)
    expect(() => broker.setGroupOffsets('g', [{ topic: 't', partition: 0, offset: 0 }])).toThrow(
      /running member/,
    )
    await m.leave()
    broker.setGroupOffsets('g', [{ topic: 't', partition: 0, offset: 0 }])
  })
})
