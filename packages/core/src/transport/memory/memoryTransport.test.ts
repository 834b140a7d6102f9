import { Partitioners, type PartitionMetadata } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { BrokerError } from '../../base/errors.js'
import type { ConsumerHandlers, RawRecord, TopicPartition } from '../transport.js'
import { MemoryBroker, memoryBroker } from './memoryBroker.js'
import { MemoryTransport } from './memoryTransport.js'

/** What kafkajs' partitioner reads: every partition, each with a live leader. */
const metadata = (partitions: number): PartitionMetadata[] =>
  Array.from({ length: partitions }, (_, partitionId) => ({
    partitionId,
    leader: 0,
    partitionErrorCode: 0,
    replicas: [0],
    isr: [0],
  }))

const buf = (s: string): Buffer => Buffer.from(s)

async function settle(broker: MemoryBroker): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    await new Promise((resolve) => setImmediate(resolve))
    if (broker.idle()) return
  }
  throw new Error('broker did not settle')
}

async function setup(topics: { name: string; partitions: number }[] = [{ name: 't', partitions: 3 }]) {
  const broker = new MemoryBroker()
  const transport = new MemoryTransport(broker, { now: () => 42 })
  await transport.connect()
  await transport.admin.ensureTopics(topics)
  return { broker, transport }
}

/** Handlers that keep every record and commit nothing by themselves. */
function collector() {
  const records: RawRecord[] = []
  const assigned: TopicPartition[][] = []
  const handlers: ConsumerHandlers = {
    onAssign: async (tps) => {
      assigned.push(tps)
    },
    onRevoke: async () => {},
    onBatch: async (batch) => {
      records.push(...batch.records)
    },
  }
  const values = (): string[] => records.map((r) => r.value!.toString())
  return { handlers, records, assigned, values }
}

describe('MemoryTransport', () => {
  it('names its broker', () => {
    const transport = new MemoryTransport(memoryBroker('transport-test'))
    expect(transport.kind).toBe('memory')
    expect(transport.url).toBe('memory://transport-test')
  })

  describe('admin', () => {
    it('creates missing topics and leaves existing ones alone', async () => {
      const { transport } = await setup()
      await transport.admin.ensureTopics([
        { name: 't', partitions: 10 },
        { name: 'u', partitions: 2, compacted: true },
      ])
      expect(await transport.admin.partitionCount('t')).toBe(3)
      expect(await transport.admin.partitionCount('u')).toBe(2)
      expect(await transport.admin.partitionCount('v')).toBeUndefined()
      expect(await transport.admin.listTopics()).toEqual(['t', 'u'])
      await transport.admin.deleteTopics(['u', 'never-existed'])
      expect(await transport.admin.listTopics()).toEqual(['t'])
    })

    it('reports start, end and group offsets, and sets group offsets', async () => {
      const { transport } = await setup()
      const producer = transport.producer()
      await producer.send({ topic: 't', partition: 1, key: null, value: buf('a') })
      await producer.send({ topic: 't', partition: 1, key: null, value: buf('b') })
      expect(await transport.admin.endOffsets('t')).toEqual(
        new Map([
          [0, 0],
          [1, 2],
          [2, 0],
        ]),
      )
      expect(await transport.admin.startOffsets('t')).toEqual(
        new Map([
          [0, 0],
          [1, 0],
          [2, 0],
        ]),
      )
      expect(await transport.admin.groupOffsets('g', 't')).toEqual(
        new Map([
          [0, -1],
          [1, -1],
          [2, -1],
        ]),
      )
      await transport.admin.setGroupOffsets('g', [{ topic: 't', partition: 1, offset: 1 }])
      expect((await transport.admin.groupOffsets('g', 't')).get(1)).toBe(1)
      await expect(transport.admin.endOffsets('missing')).rejects.toThrow(BrokerError)
    })
  })

  describe('producer', () => {
    it('refuses to send to a topic that does not exist, naming it', async () => {
      const { transport } = await setup()
      const producer = transport.producer()
      await expect(producer.send({ topic: 'nope', key: null, value: buf('x') })).rejects.toThrow(BrokerError)
      await expect(producer.sendAndWait({ topic: 'nope', key: null, value: buf('x') })).rejects.toThrow(
        /"nope"/,
      )
    })

    it('partitions keys as kafkajs and the Java client do', async () => {
      const { transport, broker } = await setup([{ name: 'k', partitions: 12 }])
      const producer = transport.producer()
      const kafkajs = Partitioners.DefaultPartitioner()
      const partitionMetadata = metadata(12)
      for (let i = 0; i < 200; i++) {
        const key = buf(`user-${i}`)
        const { partition } = await producer.sendAndWait({ topic: 'k', key, value: buf(String(i)) })
        expect(partition).toBe(kafkajs({ topic: 'k', partitionMetadata, message: { key, value: null } }))
      }
      // The same key always lands on the same partition.
      const a = await producer.sendAndWait({ topic: 'k', key: buf('user-7'), value: null })
      expect(broker.records('k', a.partition).filter((r) => r.key?.toString() === 'user-7')).toHaveLength(2)
    })

    it('acknowledges at once: sendAndWait returns the offset, flush the highest per partition', async () => {
      const { transport } = await setup()
      const producer = transport.producer()
      expect(await producer.sendAndWait({ topic: 't', partition: 0, key: null, value: buf('a') })).toEqual({
        topic: 't',
        partition: 0,
        offset: 0,
      })
      await producer.send({ topic: 't', partition: 0, key: null, value: buf('b') })
      await producer.send({ topic: 't', partition: 2, key: null, value: buf('c') })
      expect(producer.pending()).toBe(0)
      const flushed = await producer.flush()
      expect(flushed).toEqual([
        { topic: 't', partition: 0, offset: 1 },
        { topic: 't', partition: 2, offset: 0 },
      ])
      expect(await producer.flush()).toEqual([])
    })

    it('stamps records without a timestamp with its clock, and keeps given ones', async () => {
      const { transport, broker } = await setup()
      const producer = transport.producer()
      await producer.send({ topic: 't', partition: 0, key: null, value: null })
      await producer.send({ topic: 't', partition: 0, key: null, value: null, timestamp: 7 })
      expect(broker.records('t', 0).map((r) => r.timestamp)).toEqual([42, 7])
    })

    it('refuses to send once closed or aborted', async () => {
      const { transport } = await setup()
      const producer = transport.producer()
      await producer.close()
      await expect(producer.send({ topic: 't', key: null, value: null })).rejects.toThrow(/closed/)
      const other = transport.producer()
      await other.abort()
      await expect(other.send({ topic: 't', key: null, value: null })).rejects.toThrow(/closed/)
    })
  })

  describe('consumer', () => {
    it('resolves start once the first onAssign resolved', async () => {
      const { transport } = await setup()
      let assigned = false
      const consumer = transport.consumer({ groupId: 'g' })
      await consumer.start(['t'], {
        onAssign: async () => {
          await new Promise((resolve) => setImmediate(resolve))
          assigned = true
        },
        onRevoke: async () => {},
        onBatch: async () => {},
      })
      expect(assigned).toBe(true)
      expect(consumer.assignment()).toHaveLength(3)
    })

    it('resumes from the committed offset after a stop', async () => {
      const { transport, broker } = await setup([{ name: 't', partitions: 1 }])
      const producer = transport.producer()
      for (const v of ['0', '1', '2']) await producer.send({ topic: 't', key: null, value: buf(v) })

      const first = collector()
      const c1 = transport.consumer({ groupId: 'g' })
      await c1.start(['t'], first.handlers)
      await settle(broker)
      expect(first.values()).toEqual(['0', '1', '2'])
      await c1.commit([{ topic: 't', partition: 0, offset: 2 }])
      expect(await c1.committed([{ topic: 't', partition: 0 }])).toEqual([
        { topic: 't', partition: 0, offset: 2 },
      ])
      await c1.stop()
      await c1.stop() // idempotent
      await expect(c1.commit([{ topic: 't', partition: 0, offset: 3 }])).rejects.toThrow(/no longer a member/)

      await producer.send({ topic: 't', key: null, value: buf('3') })
      const second = collector()
      const c2 = transport.consumer({ groupId: 'g' })
      await c2.start(['t'], second.handlers)
      await settle(broker)
      expect(second.values()).toEqual(['2', '3'])
    })

    it('loses uncommitted progress on abort: the next member starts at the committed offset', async () => {
      const { transport, broker } = await setup([{ name: 't', partitions: 1 }])
      const producer = transport.producer()
      for (const v of ['0', '1', '2']) await producer.send({ topic: 't', key: null, value: buf(v) })
      let revoked = false
      const c1 = transport.consumer({ groupId: 'g' })
      await c1.start(['t'], {
        ...collector().handlers,
        onRevoke: async () => {
          revoked = true
        },
      })
      await settle(broker)
      await c1.commit([{ topic: 't', partition: 0, offset: 1 }])
      await c1.abort()
      await c1.abort() // idempotent
      expect(revoked).toBe(false)

      const next = collector()
      await transport.consumer({ groupId: 'g' }).start(['t'], next.handlers)
      await settle(broker)
      expect(next.values()).toEqual(['1', '2'])
    })

    it('splits co-partitioned topics between two consumers and hands all to the one that stays', async () => {
      const { transport, broker } = await setup([
        { name: 'a', partitions: 2 },
        { name: 'b', partitions: 2 },
      ])
      const producer = transport.producer()
      for (const topic of ['a', 'b']) {
        for (const partition of [0, 1]) {
          await producer.send({ topic, partition, key: null, value: buf(`${topic}${partition}-0`) })
          await producer.send({ topic, partition, key: null, value: buf(`${topic}${partition}-1`) })
        }
      }
      const r1 = collector()
      const r2 = collector()
      const c1 = transport.consumer({ groupId: 'g' })
      const c2 = transport.consumer({ groupId: 'g' })
      const order: string[] = []
      await Promise.all([
        c1.start(['a', 'b'], {
          ...r1.handlers,
          onAssign: async (tps) => {
            order.push(`c1 assign ${tps.map((t) => t.topic + t.partition).join(',')}`)
          },
        }),
        c2.start(['a', 'b'], {
          ...r2.handlers,
          onRevoke: async (tps) => {
            await new Promise((resolve) => setImmediate(resolve))
            // The runtime commits what it processed before letting go.
            await c2.commit(tps.map(({ topic, partition }) => ({ topic, partition, offset: 1 })))
            order.push(`c2 revoke ${tps.map((t) => t.topic + t.partition).join(',')}`)
          },
        }),
      ])
      expect(c1.assignment()).toEqual([
        { topic: 'a', partition: 0 },
        { topic: 'b', partition: 0 },
      ])
      expect(c2.assignment()).toEqual([
        { topic: 'a', partition: 1 },
        { topic: 'b', partition: 1 },
      ])
      await settle(broker)
      expect(r1.values().sort()).toEqual(['a0-0', 'a0-1', 'b0-0', 'b0-1'])
      expect(r2.values().sort()).toEqual(['a1-0', 'a1-1', 'b1-0', 'b1-1'])

      await c2.stop()
      await settle(broker)
      expect(order).toEqual(['c1 assign a0,b0', 'c2 revoke a1,b1', 'c1 assign a1,b1'])
      expect(c1.assignment()).toHaveLength(4)
      expect(c2.assignment()).toEqual([])
      // c1 starts the partitions it took over at c2's committed offsets.
      expect(r1.values().sort()).toEqual(['a0-0', 'a0-1', 'a1-1', 'b0-0', 'b0-1', 'b1-1'])
    })

    it('pauses and resumes through the consumer', async () => {
      const { transport, broker } = await setup([{ name: 't', partitions: 1 }])
      const r = collector()
      const consumer = transport.consumer({ groupId: 'g' })
      await consumer.start(['t'], r.handlers)
      consumer.pause([{ topic: 't', partition: 0 }])
      await transport.producer().send({ topic: 't', key: null, value: buf('x') })
      await settle(broker)
      expect(r.values()).toEqual([])
      consumer.resume([{ topic: 't', partition: 0 }])
      await settle(broker)
      expect(r.values()).toEqual(['x'])
    })

    it('honours maxBatchSize and fromBeginning', async () => {
      const { transport, broker } = await setup([{ name: 't', partitions: 1 }])
      const producer = transport.producer()
      await producer.send({ topic: 't', key: null, value: buf('old') })
      const sizes: number[] = []
      const values: string[] = []
      const consumer = transport.consumer({ groupId: 'g', fromBeginning: false, maxBatchSize: 2 })
      await consumer.start(['t'], {
        onAssign: async () => {},
        onRevoke: async () => {},
        onBatch: async (batch) => {
          sizes.push(batch.records.length)
          values.push(...batch.records.map((r) => r.value!.toString()))
        },
      })
      for (const v of ['1', '2', '3']) await producer.send({ topic: 't', key: null, value: buf(v) })
      await settle(broker)
      expect(values).toEqual(['1', '2', '3'])
      expect(Math.max(...sizes)).toBeLessThanOrEqual(2)
    })

    it('cannot be started twice', async () => {
      const { transport } = await setup()
      const consumer = transport.consumer({ groupId: 'g' })
      await consumer.start(['t'], collector().handlers)
      await expect(consumer.start(['t'], collector().handlers)).rejects.toThrow(/already started/)
      await expect(
        transport.consumer({ groupId: 'g' }).start(['missing'], collector().handlers),
      ).rejects.toThrow(/"missing"/)
    })
  })

  describe('read', () => {
    it('reads ranges in offset order, in batches of at most 1000, awaiting each', async () => {
      const { transport } = await setup([{ name: 't', partitions: 2 }])
      const producer = transport.producer()
      for (let i = 0; i < 2500; i++)
        await producer.send({ topic: 't', partition: 0, key: null, value: buf(String(i)) })
      await producer.send({ topic: 't', partition: 1, key: null, value: buf('p1') })
      const calls: { partition: number; first: number; count: number }[] = []
      let inCallback = false
      await transport.read(
        't',
        [
          { partition: 0, from: 100, to: 2500 },
          { partition: 1, from: 0, to: 1 },
        ],
        async (records) => {
          expect(inCallback).toBe(false)
          inCallback = true
          await new Promise((resolve) => setImmediate(resolve))
          calls.push({ partition: records[0]!.partition, first: records[0]!.offset, count: records.length })
          for (let i = 1; i < records.length; i++) expect(records[i]!.offset).toBe(records[i - 1]!.offset + 1)
          inCallback = false
        },
      )
      expect(calls).toEqual([
        { partition: 0, first: 100, count: 1000 },
        { partition: 0, first: 1100, count: 1000 },
        { partition: 0, first: 2100, count: 400 },
        { partition: 1, first: 0, count: 1 },
      ])
    })

    it('reads a compacted range by what survived', async () => {
      const { transport, broker } = await setup()
      await transport.admin.ensureTopics([{ name: 'c', partitions: 1, compacted: true }])
      const producer = transport.producer()
      for (const [k, v] of [
        ['a', '1'],
        ['b', '2'],
        ['a', '3'],
        ['c', '4'],
      ] as const) {
        await producer.send({ topic: 'c', key: buf(k), value: buf(v) })
      }
      broker.compact('c')
      const seen: number[] = []
      await transport.read('c', [{ partition: 0, from: 0, to: 4 }], (records) => {
        seen.push(...records.map((r) => r.offset))
      })
      expect(seen).toEqual([1, 2, 3])
    })

    it('refuses a range past the end of the partition instead of waiting forever', async () => {
      const { transport } = await setup()
      await expect(transport.read('t', [{ partition: 0, from: 0, to: 5 }], () => {})).rejects.toThrow(
        /ends at 0/,
      )
    })
  })

  it('close stops the consumers that still run, revoking their partitions', async () => {
    const { transport } = await setup([{ name: 't', partitions: 1 }])
    const revoked: TopicPartition[] = []
    const consumer = transport.consumer({ groupId: 'g' })
    await consumer.start(['t'], {
      ...collector().handlers,
      onRevoke: async (tps) => void revoked.push(...tps),
    })
    await transport.close()
    expect(revoked).toEqual([{ topic: 't', partition: 0 }])
    expect(consumer.assignment()).toEqual([])
  })
})

describe('MemoryTransport with groupTransactions (one transactional producer per member)', () => {
  it('a member that lost a partition to a rebalance, or crashed, is fenced by the group; the new owner commits', async () => {
    const broker = new MemoryBroker({ groupTransactions: true })
    const transport = new MemoryTransport(broker, { now: () => 42 })
    await transport.admin.ensureTopics([{ name: 't', partitions: 2 }])
    const plain = transport.consumer({ groupId: 'solo' })
    const a = transport.consumer({ groupId: 'g' })
    await a.start(['t'], collector().handlers)
    const pa = await a.transactionalProducer!('app-tx-worker')
    const out = { topic: 't', partition: 0, key: null, value: buf('x') }
    await pa.commit([out], [{ topic: 't', partition: 1, offset: 1 }], 'g')
    const b = transport.consumer({ groupId: 'g' })
    await b.start(['t'], collector().handlers)
    await settle(broker)
    const lost = a.assignment().length === 1 ? (a.assignment()[0]!.partition === 0 ? 1 : 0) : -1
    expect(lost).toBeGreaterThanOrEqual(0)
    // a's membership no longer covers the partition b took: its commit writes nothing.
    const before = broker.endOffsets('t').get(0)
    await expect(pa.commit([out], [{ topic: 't', partition: lost, offset: 2 }], 'g')).rejects.toMatchObject({
      code: 'FENCED',
    })
    expect(broker.endOffsets('t').get(0)).toBe(before)
    const pb = await b.transactionalProducer!('app-tx-worker')
    expect(pb.transactionalId).not.toBe(pa.transactionalId)
    await pb.commit([], [{ topic: 't', partition: lost, offset: 2 }], 'g')
    expect(broker.committedOffset('g', 't', lost)).toBe(2)
    // A crashed member's producer is fenced for what it still held too.
    await a.abort()
    await expect(pa.commit([], [{ topic: 't', partition: 1 - lost, offset: 3 }], 'g')).rejects.toMatchObject({
      code: 'FENCED',
    })
    // Without groupTransactions a consumer offers no such producer.
    expect(
      new MemoryTransport(new MemoryBroker()).consumer({ groupId: 'g' }).transactionalProducer,
    ).toBeUndefined()
    expect(plain.transactionalProducer).toBeDefined()
    await b.stop()
  })
})
