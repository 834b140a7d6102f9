import { afterAll, expect, it } from 'vitest'
import { KafkaTransport } from '../../src/index.js'
import type { Hit } from '../helpers.js'
import { events, expected, hitCounter, tableOf, waitForTable } from './hitCounterFixture.js'
import { describeKafka, kafkaBrokers, uniqueName } from './kafka.js'

const created: { id: string; topics: string[] }[] = []

afterAll(async () => {
  if (created.length === 0) return
  const t = new KafkaTransport(kafkaBrokers().split(','))
  await t.connect()
  const all = await t.admin.listTopics()
  await t.admin.deleteTopics(
    all.filter((name) => created.some((c) => c.topics.includes(name) || name.startsWith(`${c.id}-`))),
  )
  await t.close()
})

/** What a read-committed reader sees of a topic, as value -> times seen. */
async function committedValues(topic: string): Promise<Map<string, number>> {
  const t = new KafkaTransport(kafkaBrokers().split(','))
  await t.connect()
  const ends = await t.admin.endOffsets(topic)
  const seen = new Map<string, number>()
  await t.read(
    topic,
    [...ends].map(([partition, to]) => ({ partition, from: 0, to })),
    (records) => {
      for (const r of records) {
        const v = r.value!.toString()
        seen.set(v, (seen.get(v) ?? 0) + 1)
      }
    },
  )
  await t.close()
  return seen
}

describeKafka('exactly_once on Kafka', () => {
  it('a worker killed mid-run: the next one counts every hit once and count_topic holds each once', async () => {
    const id = uniqueName('eos')
    const hitTopic = uniqueName('eos_hits')
    created.push({ id, topics: [hitTopic] })
    const options = { processingGuarantee: 'exactly_once' as const, commitEvery: 500 }

    const first = hitCounter(id, hitTopic, options)
    await first.app.start()
    const input = events(20_000, 7).map((h, i) => ({ ...h, timestamp: i }))
    const producer = first.app.worker!.transport.producer()
    for (const hit of input) {
      await producer.send({
        topic: hitTopic,
        key: Buffer.from(hit.userId),
        value: Buffer.from(JSON.stringify(hit)),
      })
    }
    await producer.flush()
    // Kill it while it is busy: some transactions committed, one maybe open, the rest not begun.
    const want = expected(input)
    const total = [...want.values()].reduce((a, b) => a + b, 0)
    const deadline = Date.now() + 30_000
    for (;;) {
      const got = [...(await tableOf(first.counts)).values()].reduce((a, b) => a + b, 0)
      if (got >= total / 3 || Date.now() > deadline) break
      await new Promise((r) => setTimeout(r, 20))
    }
    await first.app.abort(new Error('killed by the test'))

    const second = hitCounter(id, hitTopic, options)
    await second.app.start()
    expect(await waitForTable(second.counts, want, 90_000)).toEqual(want)
    await new Promise((r) => setTimeout(r, 1500))
    expect(await tableOf(second.counts)).toEqual(want)
    await second.app.stop()

    const outputs = await committedValues(`${id}-count_topic`)
    const wantOutputs = new Map<string, number>()
    for (const hit of input as Hit[]) {
      if (hit.hits > 20) {
        const v = JSON.stringify(hit)
        wantOutputs.set(v, (wantOutputs.get(v) ?? 0) + 1)
      }
    }
    expect(outputs.size).toBe(wantOutputs.size)
    expect(outputs).toEqual(wantOutputs)
  }, 180_000)
})
