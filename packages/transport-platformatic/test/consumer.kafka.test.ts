import type { RecordBatch, TopicPartition } from '@mephisto/core'
import { BrokerError, KafkaTransport } from '@mephisto/core'
import { Producer } from '@platformatic/kafka'
import { expect, it } from 'vitest'
import { KafkaClient } from '../src/client.js'
import type { PlatformaticConsumer } from '../src/consumer.js'
import { GroupCoordinator } from '../src/coordinator.js'
import { PlatformaticTransport } from '../src/index.js'
import type { Membership } from '../src/membership.js'
import { PlatformaticTransactionalProducer } from '../src/transactions.js'
import { describeKafka, kafkaBrokers, kafkaSaslBrokers, testTransport, uniqueName } from './kafka.js'

async function waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

const quiet = { debug() {}, info() {}, warn() {}, error() {} }
const noHandlers = { onAssign: async () => {}, onRevoke: async () => {}, onBatch: async () => {} }

describeKafka('PlatformaticConsumer', () => {
  it('heartbeats while a slow onBatch holds the partition, so the session outlives it', async () => {
    // The broker's minimum session timeout is 6 s; the batch takes longer than that.
    const t = testTransport({ platformatic: { consumer: { sessionTimeout: 6000, heartbeatInterval: 1000 } } })
    await t.connect()
    const topic = uniqueName('slow')
    await t.admin.ensureTopics([{ name: topic, partitions: 1 }])
    try {
      const p = t.producer()
      await p.sendAndWait({ topic, key: null, value: Buffer.from('first') })
      const revoked: TopicPartition[][] = []
      const values: string[] = []
      const c = t.consumer({ groupId: uniqueName('slow'), maxBatchSize: 1 })
      await c.start([topic], {
        onAssign: async () => {},
        onRevoke: async (tps) => {
          revoked.push(tps)
        },
        onBatch: async (batch: RecordBatch) => {
          values.push(batch.records[0]!.value!.toString())
          if (values.length === 1) await new Promise((r) => setTimeout(r, 8000))
        },
      })
      await p.sendAndWait({ topic, key: null, value: Buffer.from('second') })
      await waitFor('the record after the slow one', () => values.length === 2, 20_000)
      expect(values).toEqual(['first', 'second'])
      expect(revoked).toEqual([])
      await c.stop()
      await p.close()
    } finally {
      await t.admin.deleteTopics([topic])
      await t.close()
    }
  }, 40_000)

  it('delivers nothing before onAssign resolved, then from where onAssign seeked', async () => {
    const t = testTransport()
    await t.connect()
    const topic = uniqueName('assign')
    await t.admin.ensureTopics([{ name: topic, partitions: 1 }])
    try {
      const p = t.producer()
      for (const v of ['a', 'b', 'c']) await p.sendAndWait({ topic, key: null, value: Buffer.from(v) })
      const values: string[] = []
      let assignedAt = 0
      let firstBatchAt = 0
      const c = t.consumer({ groupId: uniqueName('assign') })
      await c.start([topic], {
        onAssign: async (tps) => {
          await new Promise((r) => setTimeout(r, 1500))
          c.seek?.(tps.map((tp) => ({ ...tp, offset: 1 })))
          assignedAt = Date.now()
        },
        onRevoke: async () => {},
        onBatch: async (batch: RecordBatch) => {
          firstBatchAt ||= Date.now()
          for (const r of batch.records) values.push(r.value!.toString())
        },
      })
      await waitFor('b and c', () => values.length >= 2, 20_000)
      expect(firstBatchAt).toBeGreaterThanOrEqual(assignedAt)
      expect(values).toEqual(['b', 'c'])
      await c.stop()
      await p.close()
    } finally {
      await t.admin.deleteTopics([topic])
      await t.close()
    }
  }, 40_000)

  it('skips records of aborted transactions that interleave (aborts not in first-offset order)', async () => {
    const t = testTransport()
    await t.connect()
    const topic = uniqueName('aborts')
    await t.admin.ensureTopics([{ name: topic, partitions: 1 }])
    const producer = (transactionalId?: string) =>
      new Producer({
        clientId: 'aborts',
        bootstrapBrokers: kafkaBrokers().split(','),
        ...(transactionalId ? { idempotent: true, transactionalId } : { acks: -1 }),
      })
    const a = producer(uniqueName('a'))
    const b = producer(uniqueName('b'))
    const plain = producer()
    try {
      const fresh = { producerId: -1n, producerEpoch: -1 }
      const ta = await a.beginTransaction(fresh)
      const send = (txn: typeof ta, value: string) =>
        txn.send({ messages: [{ topic, partition: 0, value: Buffer.from(value) }] })
      await send(ta, 'aborted-a1')
      const tb = await b.beginTransaction(fresh)
      await send(tb, 'aborted-b1')
      await send(ta, 'aborted-a2')
      await tb.abort()
      await plain.send({ messages: [{ topic, partition: 0, value: Buffer.from('kept-1') }] })
      await ta.abort()
      await plain.send({ messages: [{ topic, partition: 0, value: Buffer.from('kept-2') }] })
      const values: string[] = []
      const c = t.consumer({ groupId: uniqueName('aborts') })
      await c.start([topic], {
        ...noHandlers,
        onBatch: async (batch: RecordBatch) => {
          for (const r of batch.records) values.push(r.value!.toString())
        },
      })
      await waitFor('kept-2', () => values.includes('kept-2'), 20_000)
      expect(values).toEqual(['kept-1', 'kept-2'])
      const read: string[] = []
      const ends = await t.admin.endOffsets(topic)
      await t.read(topic, [{ partition: 0, from: 0, to: ends.get(0)! }], (records) => {
        for (const r of records) read.push(r.value!.toString())
      })
      expect(read).toEqual(['kept-1', 'kept-2'])
      await c.stop()
    } finally {
      await Promise.all([a.close(true), b.close(true), plain.close(true)])
      await t.admin.deleteTopics([topic])
      await t.close()
    }
  }, 40_000)

  it('revokes at once when a rebalance starts during a blocked onBatch (the revoke unblocks it)', async () => {
    const t = testTransport()
    await t.connect()
    const topic = uniqueName('blocked')
    await t.admin.ensureTopics([{ name: topic, partitions: 2 }])
    try {
      const p = t.producer()
      await p.sendAndWait({ topic, partition: 0, key: null, value: Buffer.from('x') })
      await p.sendAndWait({ topic, partition: 1, key: null, value: Buffer.from('y') })
      const groupId = uniqueName('blocked')
      let unblock!: () => void
      const blocked = new Promise<void>((r) => (unblock = r))
      let revokedAt = 0
      const a = t.consumer({ groupId })
      await a.start([topic], {
        onAssign: async () => {},
        onRevoke: async () => {
          revokedAt = Date.now()
          unblock()
        },
        onBatch: () => blocked,
      })
      const b = t.consumer({ groupId })
      const started = Date.now()
      await b.start([topic], noHandlers)
      await waitFor('the split', () => a.assignment().length === 1 && b.assignment().length === 1, 15_000)
      expect(revokedAt).toBeGreaterThanOrEqual(started)
      await b.stop()
      await a.stop()
      await p.close()
    } finally {
      await t.admin.deleteTopics([topic])
      await t.close()
    }
  }, 40_000)

  it('shares a group with kafkajs consumers: one assigner protocol, co-partitioned, standbys placed', async () => {
    const t = testTransport()
    const kjs = new KafkaTransport(kafkaBrokers().split(','), {
      logger: quiet,
      kafka: { consumer: { heartbeatInterval: 300, sessionTimeout: 10_000, maxWaitTimeInMs: 200 } },
    })
    await Promise.all([t.connect(), kjs.connect()])
    const topics = [uniqueName('mixed-a'), uniqueName('mixed-b')]
    await t.admin.ensureTopics(topics.map((name) => ({ name, partitions: 4 })))
    try {
      const groupId = uniqueName('mixed')
      const plat = t.consumer({ groupId, standbyReplicas: 1 })
      const other = kjs.consumer({ groupId, standbyReplicas: 1 })
      await plat.start(topics, noHandlers)
      await other.start(topics, noHandlers)
      const numbers = (c: typeof plat) => [...new Set(c.assignment().map((tp) => tp.partition))].sort()
      await waitFor(
        'a split with standby copies on both',
        () =>
          numbers(plat).length === 2 &&
          numbers(other).length === 2 &&
          plat.standbys?.()?.length === 2 &&
          other.standbys?.()?.length === 2,
        20_000,
      )
      expect([...numbers(plat), ...numbers(other)].sort()).toEqual([0, 1, 2, 3])
      // Co-partitioned across both clients: partition p of both topics on one member.
      for (const c of [plat, other]) {
        const of = (topic: string) =>
          c
            .assignment()
            .filter((tp) => tp.topic === topic)
            .map((tp) => tp.partition)
        expect(of(topics[0]!)).toEqual(of(topics[1]!))
      }
      expect(plat.standbys!()!.sort()).toEqual(numbers(other))
      await other.stop()
      await waitFor(
        'the platformatic member to own every partition',
        () => plat.assignment().length === 8,
        20_000,
      )
      await plat.stop()
    } finally {
      await t.admin.deleteTopics(topics)
      await kjs.close()
      await t.close()
    }
  }, 60_000)

  it("a zombie's transactional offsets, sent with the generation it had before a rebalance, are fenced by the group", async () => {
    const t = testTransport()
    await t.connect()
    const topic = uniqueName('zombie')
    await t.admin.ensureTopics([{ name: topic, partitions: 2 }])
    const client = new KafkaClient(kafkaBrokers().split(','), { clientId: 'zombie' })
    try {
      const groupId = uniqueName('zombie')
      const a = t.consumer({ groupId }) as PlatformaticConsumer
      await a.start([topic], noHandlers)
      // What a member that froze here (a long GC pause, a lost network) would still commit with.
      const stale = (a as unknown as { currentMembership(): Membership }).currentMembership()
      const b = t.consumer({ groupId })
      await b.start([topic], noHandlers)
      await waitFor('the split', () => a.assignment().length === 1 && b.assignment().length === 1, 15_000)
      const kept = a.assignment()[0]!.partition
      const coordinator = new GroupCoordinator(client, groupId)
      const transactionalId = uniqueName('zombie-tx')
      const zombie = new PlatformaticTransactionalProducer(
        new Producer({
          clientId: 'zombie',
          bootstrapBrokers: kafkaBrokers().split(','),
          idempotent: true,
          transactionalId,
        }),
        transactionalId,
        async () => 2,
        new Map(),
        { coordinator: () => ({ client, coordinator }), membership: () => stale },
        t.url,
      )
      await zombie.init()
      // Not refused here (the partition is still a's): the group refuses the stale generation.
      const error = await zombie
        .commit(
          [{ topic, partition: kept, key: null, value: Buffer.from('zombie') }],
          [{ topic, partition: kept, offset: 1 }],
          groupId,
        )
        .then(
          () => undefined,
          (e: unknown) => e,
        )
      expect(error).toMatchObject({ code: 'FENCED' })
      expect((error as Error).message).toMatch(/ILLEGAL_GENERATION|UNKNOWN_MEMBER_ID/)
      expect((await t.admin.groupOffsets(groupId, topic)).get(kept)).toBe(-1)
      await zombie.close()
      await b.stop()
      await a.stop()
    } finally {
      await client.close()
      await t.admin.deleteTopics([topic])
      await t.close()
    }
  }, 40_000)
})

describeKafka('committed offsets, stable (KIP-447 require_stable)', () => {
  it('committed({ stable }) waits for the offsets of a transaction still open and answers with them once it commits', async () => {
    const t = testTransport()
    await t.connect()
    const topic = uniqueName('stable')
    await t.admin.ensureTopics([{ name: topic, partitions: 1 }])
    const client = new KafkaClient(kafkaBrokers().split(','), { clientId: 'stable' })
    const transactionalId = uniqueName('stable-tx')
    const producer = new Producer({
      clientId: 'stable',
      bootstrapBrokers: kafkaBrokers().split(','),
      idempotent: true,
      transactionalId,
    })
    try {
      const groupId = uniqueName('stable')
      const c = t.consumer({ groupId })
      const tp = { topic, partition: 0 }
      // A transaction that wrote a record and the group's offset, and has not committed yet.
      const txn = await producer.beginTransaction({ producerId: -1n, producerEpoch: -1 })
      await txn.send({ messages: [{ topic, partition: 0, value: Buffer.from('x') }] })
      await txn.addConsumer({ groupId } as Parameters<typeof txn.addConsumer>[0])
      const coordinator = new GroupCoordinator(client, groupId)
      await coordinator.run(
        (conn) =>
          client.call(
            'TxnOffsetCommit',
            conn,
            transactionalId,
            groupId,
            producer.producerId,
            producer.producerEpoch,
            -1,
            '',
            null,
            [
              {
                name: topic,
                partitions: [{ partitionIndex: 0, committedOffset: 1n, committedLeaderEpoch: -1 }],
              },
            ],
          ),
        10_000,
      )
      let answered = 0
      const stable = c.committed([tp], { stable: true }).then((offsets) => {
        answered = Date.now()
        return offsets
      })
      await new Promise((r) => setTimeout(r, 1000))
      expect(answered).toBe(0)
      // Without `stable` the previous commit (none) is the answer.
      expect(await c.committed([tp])).toEqual([{ ...tp, offset: -1 }])
      const committedAt = Date.now()
      await txn.commit()
      expect(await stable).toEqual([{ ...tp, offset: 1 }])
      expect(answered).toBeGreaterThanOrEqual(committedAt)
      await c.stop()
    } finally {
      await producer.close(true)
      await client.close()
      await t.admin.deleteTopics([topic])
      await t.close()
    }
  }, 40_000)
})

describeKafka('PlatformaticTransport connections', () => {
  const sasl = kafkaSaslBrokers()
  it.skipIf(!sasl)(
    "SASL/PLAIN from the app's kafkajs options; a wrong password is a clear error",
    async () => {
      const good = new PlatformaticTransport(sasl.split(','), {
        logger: quiet,
        kafka: {
          client: { sasl: { mechanism: 'plain', username: 'mephisto', password: 'mephisto-secret' } },
        },
      })
      await good.connect()
      const topic = uniqueName('sasl')
      await good.admin.ensureTopics([{ name: topic, partitions: 1 }])
      const producer = good.producer()
      expect((await producer.sendAndWait({ topic, key: null, value: Buffer.from('hi') })).offset).toBe(0)
      const seen: string[] = []
      await good.read(topic, [{ partition: 0, from: 0, to: 1 }], (records) => {
        for (const r of records) seen.push(r.value!.toString())
      })
      expect(seen).toEqual(['hi'])
      await good.admin.deleteTopics([topic])
      await good.close()

      const bad = new PlatformaticTransport(sasl.split(','), {
        logger: quiet,
        platformatic: {
          client: {
            sasl: { mechanism: 'PLAIN', username: 'mephisto', password: 'wrong' },
            retries: 1,
            retryDelay: 100,
          },
        },
      })
      const error = await bad.connect().then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).toBeInstanceOf(BrokerError)
      expect((error as Error).message).toMatch(/refused authentication as "mephisto" \(SASL PLAIN\)/)
      await bad.close()
    },
    60_000,
  )

  it('an unreachable broker fails connect() with a BrokerError naming it', async () => {
    const unreachable = new PlatformaticTransport(['127.0.0.1:1'], {
      logger: quiet,
      platformatic: { client: { retries: 1, retryDelay: 50, connectTimeout: 500 } },
    })
    const error = await unreachable.connect().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(BrokerError)
    expect((error as Error).message).toMatch(
      /Cannot connect to Kafka at 127\.0\.0\.1:1: .*Check that the brokers run/,
    )
    // A consumer's start() fails the same way, retriable, and gives its instance id back.
    const consumer = unreachable.consumer({ groupId: 'unreachable' }) as PlatformaticConsumer
    const failed = await consumer.start(['t'], noHandlers).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(failed).toBeInstanceOf(BrokerError)
    expect(failed).toMatchObject({ retriable: true })
    expect((failed as Error).message).toMatch(/could not start on platformatic:\/\/127\.0\.0\.1:1/)
    const next = unreachable.consumer({ groupId: 'unreachable' }) as PlatformaticConsumer
    expect(next.groupInstanceId).toBe(consumer.groupInstanceId)
    await unreachable.close()
  })
})
