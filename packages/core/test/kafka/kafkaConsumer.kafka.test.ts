import { Kafka, logLevel } from 'kafkajs'
import { expect, it } from 'vitest'
import type { RecordBatch, TopicPartition } from '../../src/index.js'
import { describeKafka, kafkaBrokers, testTransport, uniqueName } from './kafka.js'

async function waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

describeKafka('KafkaConsumer', () => {
  it('heartbeats while a slow onBatch holds the partition, so the session outlives it', async () => {
    // The broker's minimum session timeout is 6 s; the batch takes longer than that.
    const t = testTransport({ kafka: { consumer: { sessionTimeout: 6000, heartbeatInterval: 1000 } } })
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

  it('holds what is fetched while onAssign runs until it resolved, and drops it if onAssign seeked', async () => {
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
          // Long enough for kafkajs to fetch from the start meanwhile (partitions are not paused).
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
      // 'a', fetched before the seek, was dropped as stale rather than delivered.
      expect(values).toEqual(['b', 'c'])
      await c.stop()
      await p.close()
    } finally {
      await t.admin.deleteTopics([topic])
      await t.close()
    }
  }, 40_000)

  it('skips records of aborted transactions that interleave (aborts not in first-offset order)', async () => {
    // Two transactional producers write to one partition; the later-started one aborts first, so
    // the broker lists the aborted transactions in abort order, not by first offset. kafkajs 2.2.4
    // assumes first-offset order and let the other's first record through (the exactly-once
    // double count after fencing: every worker's producer writes to the same output partition).
    const t = testTransport()
    await t.connect()
    const topic = uniqueName('aborts')
    await t.admin.ensureTopics([{ name: topic, partitions: 1 }])
    const kafka = new Kafka({
      clientId: 'aborts',
      brokers: kafkaBrokers().split(','),
      logLevel: logLevel.NOTHING,
    })
    const producer = (id: string) =>
      kafka.producer({ transactionalId: uniqueName(id), idempotent: true, maxInFlightRequests: 1 })
    const a = producer('a')
    const b = producer('b')
    const plain = kafka.producer()
    try {
      await Promise.all([a.connect(), b.connect(), plain.connect()])
      const ta = await a.transaction()
      const tb = await b.transaction()
      const send = (txn: typeof ta, value: string) => txn.send({ topic, messages: [{ value }] })
      await send(ta, 'aborted-a1')
      await send(tb, 'aborted-b1')
      await send(ta, 'aborted-a2')
      await tb.abort()
      await plain.send({ topic, messages: [{ value: 'kept-1' }] })
      await ta.abort()
      await plain.send({ topic, messages: [{ value: 'kept-2' }] })
      const values: string[] = []
      const c = t.consumer({ groupId: uniqueName('aborts') })
      await c.start([topic], {
        onAssign: async () => {},
        onRevoke: async () => {},
        onBatch: async (batch: RecordBatch) => {
          for (const r of batch.records) values.push(r.value!.toString())
        },
      })
      await waitFor('kept-2', () => values.includes('kept-2'), 20_000)
      expect(values).toEqual(['kept-1', 'kept-2'])
      await c.stop()
    } finally {
      await Promise.all([a.disconnect(), b.disconnect(), plain.disconnect()])
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
      // Like the runtime: onBatch waits for queue space, which the revoke frees.
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
      await b.start([topic], { onAssign: async () => {}, onRevoke: async () => {}, onBatch: async () => {} })
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
})

describeKafka('KafkaReader', () => {
  /** Sockets of this test worker open to the broker's port. */
  const brokerSockets = (port: number): number =>
    (process as unknown as { _getActiveHandles(): { remotePort?: number; destroyed?: boolean }[] })
      ._getActiveHandles()
      .filter((h) => h.remotePort === port && h.destroyed !== true).length

  it('concurrent reads share one fetch connection and close leaves no socket open', async () => {
    const t = testTransport()
    await t.connect()
    const topic = uniqueName('reads')
    await t.admin.ensureTopics([{ name: topic, partitions: 4 }])
    try {
      const p = t.producer()
      for (let partition = 0; partition < 4; partition++)
        await p.sendAndWait({ topic, partition, key: null, value: Buffer.from(`v${partition}`) })
      await p.close()
      const port = Number(kafkaBrokers().split(',')[0]!.split(':').at(-1))
      const before = brokerSockets(port)
      // A fresh transport whose fetch connection is not open yet: four reads race to open it.
      const reader = testTransport()
      await reader.connect()
      const seen: string[] = []
      await Promise.all(
        [0, 1, 2, 3].map((partition) =>
          reader.read(topic, [{ partition, from: 0, to: 1 }], (records) => {
            for (const r of records) seen.push(r.value!.toString())
          }),
        ),
      )
      expect(seen.sort()).toEqual(['v0', 'v1', 'v2', 'v3'])
      await reader.close()
      await new Promise((r) => setTimeout(r, 100))
      expect(brokerSockets(port)).toBe(before)
    } finally {
      await t.admin.deleteTopics([topic])
      await t.close()
    }
  }, 30_000)
})
