/**
 * Throughput of the Kafka transport on a real broker (not a test: numbers, no assertions).
 *   KAFKA_BROKERS=127.0.0.1:9092 npx tsx test/kafka/throughput.ts [records]
 */
import { randomUUID } from 'node:crypto'
import type { RawRecord } from '../../src/index.js'
import { KafkaTransport } from '../../src/index.js'

const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',')
const n = Number(process.argv[2] ?? 200_000)
const partitions = 8

const t = new KafkaTransport(brokers)
await t.connect()
const topic = `throughput-${randomUUID().slice(0, 8)}`
await t.admin.ensureTopics([{ name: topic, partitions }])

const rate = (count: number, ms: number): string =>
  `${Math.round((count / ms) * 1000).toLocaleString('en')} records/s`

// Producer: send() every record (awaiting the buffer), then one flush.
const producer = t.producer()
const values = Array.from({ length: 1000 }, (_, i) =>
  Buffer.from(JSON.stringify({ userId: `user-${i % 100}`, hits: i % 40, timestamp: Date.now() })),
)
let start = performance.now()
for (let i = 0; i < n; i++) {
  await producer.send({ topic, key: Buffer.from(`user-${i % 100}`), value: values[i % 1000]! })
}
const offsets = await producer.flush()
let ms = performance.now() - start
console.log(`producer: ${n} records (~${values[0]!.length} B values) in ${ms.toFixed(0)} ms = ${rate(n, ms)}`)
console.log(
  `  flush returned ${offsets.length} partitions, sum of (offset+1) = ${offsets.reduce((a, o) => a + o.offset + 1, 0)}`,
)

// Consumer: onBatch is a no-op; time from start() to the last record delivered.
const consumer = t.consumer({ groupId: `throughput-${randomUUID().slice(0, 8)}` })
let seen = 0
let firstBatchAt = 0
let done!: () => void
const all = new Promise<void>((r) => (done = r))
start = performance.now()
await consumer.start([topic], {
  onAssign: async () => {},
  onRevoke: async () => {},
  onBatch: async (batch) => {
    if (firstBatchAt === 0) firstBatchAt = performance.now()
    seen += batch.records.length
    if (seen >= n) done()
  },
})
const joined = performance.now() - start
await all
ms = performance.now() - start
const steady = performance.now() - firstBatchAt
console.log(
  `consumer: ${seen} records in ${ms.toFixed(0)} ms = ${rate(seen, ms)} (join ${joined.toFixed(0)} ms; ` +
    `from the first batch ${rate(seen, steady)})`,
)
await consumer.stop()

// read(): what table recovery pays per partition.
const ends = await t.admin.endOffsets(topic)
start = performance.now()
await t.read(topic, [{ partition: 0, from: 0, to: 0 }], () => {})
console.log(`read: empty range in ${(performance.now() - start).toFixed(2)} ms`)
start = performance.now()
await t.read(topic, [{ partition: 0, from: 0, to: 1 }], () => {})
console.log(
  `read: 1 record (first read on this transport: connects) in ${(performance.now() - start).toFixed(1)} ms`,
)
start = performance.now()
await t.read(topic, [{ partition: 0, from: 1, to: 2 }], () => {})
console.log(`read: 1 record (connected) in ${(performance.now() - start).toFixed(1)} ms`)
const want = Math.min(100_000, n)
let read = 0
const ranges = []
let left = want
for (let p = 0; p < partitions && left > 0; p++) {
  const to = Math.min(ends.get(p)!, left)
  ranges.push({ partition: p, from: 0, to })
  left -= to
}
start = performance.now()
await t.read(topic, ranges, (records: RawRecord[]) => {
  read += records.length
})
ms = performance.now() - start
console.log(
  `read: ${read} records over ${ranges.length} partition(s) in ${ms.toFixed(0)} ms = ${rate(read, ms)}`,
)
const p0 = ends.get(0)!
start = performance.now()
read = 0
await t.read(topic, [{ partition: 0, from: 0, to: p0 }], (records) => {
  read += records.length
})
ms = performance.now() - start
console.log(`read: ${read} records of one partition in ${ms.toFixed(0)} ms = ${rate(read, ms)}`)

await producer.close()
await t.admin.deleteTopics([topic])
await t.close()
