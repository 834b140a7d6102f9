import type { RawRecord } from '@mephisto/core'
import type { API } from '@platformatic/kafka'
import { kGetApi } from '@platformatic/kafka'
import { expect, it } from 'vitest'
import { EncodingProducer } from '../src/encodingProducer.js'
import { describeKafka, kafkaBrokers, testTransport, uniqueName } from './kafka.js'

const DAY_MS = 86_400_000

describeKafka('produce requests written by produceRequest.ts', () => {
  it('the broker negotiates a Produce version they are written for', async () => {
    const producer = new EncodingProducer({
      clientId: 'produce-request-test',
      bootstrapBrokers: kafkaBrokers().split(','),
    })
    try {
      const api = await new Promise<API<unknown[], unknown>>((resolve, reject) =>
        producer[kGetApi]('Produce', (error, api) => (error ? reject(error) : resolve(api!))),
      )
      // Kafka 3.x and 4.x with platformatic 2.12.1: v11 (v9 and v10 are the other flexible ones).
      expect([9, 10, 11]).toContain(api.version)
    } finally {
      await producer.close()
    }
  })

  it('the broker stores what they carry: keys, values, headers, tombstones, timestamps 30 days apart', async () => {
    const t = testTransport()
    await t.connect()
    const topic = uniqueName('produce-request')
    await t.admin.ensureTopics([{ name: topic, partitions: 2 }])
    try {
      const base = Date.now() - 31 * DAY_MS
      const big = Buffer.alloc(100_000, 7)
      const p = t.producer()
      // One flush, one request: partition 0's batch holds timestamps 30 days apart, which
      // platformatic 2.12.1's own encoder would write as another delta.
      await p.send({
        topic,
        partition: 0,
        key: Buffer.from('a'),
        value: Buffer.from('v1'),
        headers: { h: Buffer.from('x') },
        timestamp: base,
      })
      await p.send({
        topic,
        partition: 0,
        key: null,
        value: Buffer.from('v2'),
        timestamp: base + 30 * DAY_MS,
      })
      await p.send({ topic, partition: 0, key: Buffer.from('k'), value: null, timestamp: base + 1 })
      await p.send({ topic, partition: 1, key: Buffer.from('big'), value: big })
      await p.flush()
      await p.close()

      const ends = await t.admin.endOffsets(topic)
      const records: RawRecord[] = []
      await t.read(
        topic,
        [...ends].map(([partition, to]) => ({ partition, from: 0, to })),
        (batch) => {
          records.push(...batch)
        },
      )
      records.sort((a, b) => a.partition - b.partition || a.offset - b.offset)
      expect(
        records.map((r) => [
          r.partition,
          r.offset,
          r.key?.toString() ?? null,
          r.value?.toString() ?? null,
          r.timestamp,
        ]),
      ).toEqual([
        [0, 0, 'a', 'v1', base],
        [0, 1, null, 'v2', base + 30 * DAY_MS],
        [0, 2, 'k', null, base + 1],
        [1, 0, 'big', big.toString(), expect.any(Number)],
      ])
      expect(records[0]!.headers.h?.toString()).toBe('x')
      expect(Math.abs(records[3]!.timestamp - Date.now())).toBeLessThan(60_000)
    } finally {
      await t.admin.deleteTopics([topic])
      await t.close()
    }
  }, 30_000)
})
