import type { AppOptions } from '@mephisto/core'
import { afterAll, expect, it } from 'vitest'
import type { Hit } from '../../core/test/helpers.js'
import {
  events,
  expected,
  hitCounter,
  tableOf,
  waitForTable,
} from '../../core/test/kafka/hitCounterFixture.js'
import { PlatformaticTransport } from '../src/index.js'
import { describeKafka, testTransport, uniqueName } from './kafka.js'

/** The hit counter of core's Kafka tests, on this transport (chosen by name: importing the package registered it). */
const onPlatformatic: Partial<AppOptions> = {
  transport: 'platformatic',
  platformatic: { consumer: { sessionTimeout: 10_000 } },
}

const created: { id: string; topics: string[] }[] = []

afterAll(async () => {
  if (created.length === 0) return
  const t = testTransport()
  await t.connect()
  const all = await t.admin.listTopics()
  await t.admin.deleteTopics(
    all.filter((name) => created.some((c) => c.topics.includes(name) || name.startsWith(`${c.id}-`))),
  )
  await t.close()
})

/** What a read-committed reader sees of a topic, as value -> times seen. */
async function committedValues(topic: string): Promise<Map<string, number>> {
  const t = testTransport()
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

describeKafka('an app on the platformatic transport', () => {
  it('the hit counter counts 10,000 events, and a restart resumes from the committed offsets', async () => {
    const id = uniqueName('plat-hits')
    const hitTopic = uniqueName('plat_hit_count')
    created.push({ id, topics: [hitTopic] })
    const first = hitCounter(id, hitTopic, onPlatformatic)
    await first.app.start()
    expect(first.app.worker!.transport).toBeInstanceOf(PlatformaticTransport)
    const batch1 = events(10_000, 1)
    for (const hit of batch1) await first.hits.send({ key: hit.userId, value: hit })
    const want1 = expected(batch1)
    expect(await waitForTable(first.counts, want1, 60_000)).toEqual(want1)
    await first.app.stop()

    const second = hitCounter(id, hitTopic, onPlatformatic)
    await second.app.start()
    expect(await tableOf(second.counts)).toEqual(want1)
    const batch2 = events(1_000, 2)
    for (const hit of batch2) await second.hits.send({ key: hit.userId, value: hit })
    const want2 = expected([...batch1, ...batch2])
    expect(await waitForTable(second.counts, want2, 60_000)).toEqual(want2)
    await new Promise((r) => setTimeout(r, 1000))
    expect(await tableOf(second.counts)).toEqual(want2)
    await second.app.stop()
  }, 120_000)

  it('exactly_once, one transactional producer per worker: a worker killed mid-run, the next counts every hit once', async () => {
    const id = uniqueName('plat-eos')
    const hitTopic = uniqueName('plat_eos_hits')
    created.push({ id, topics: [hitTopic] })
    const options = { ...onPlatformatic, processingGuarantee: 'exactly_once' as const, commitEvery: 500 }

    // The input is there before the first worker starts, so it is killed while it works through it.
    const input = events(20_000, 7).map((h, i) => ({ ...h, timestamp: i }))
    const feeder = testTransport()
    await feeder.connect()
    await feeder.admin.ensureTopics([{ name: hitTopic, partitions: 4 }])
    const producer = feeder.producer()
    for (const hit of input) {
      await producer.send({
        topic: hitTopic,
        key: Buffer.from(hit.userId),
        value: Buffer.from(JSON.stringify(hit)),
      })
    }
    await producer.flush()
    await feeder.close()
    const first = hitCounter(id, hitTopic, options)
    await first.app.start()
    expect(first.app.worker!.transactionProducers()).toEqual({ model: 'worker', producers: 1 })
    const want = expected(input)
    const total = [...want.values()].reduce((a, b) => a + b, 0)
    const deadline = Date.now() + 30_000
    for (;;) {
      const got = [...(await tableOf(first.counts)).values()].reduce((a, b) => a + b, 0)
      if (got >= total / 3 || Date.now() > deadline) {
        expect(got).toBeLessThan(total)
        process.stderr.write(`[exactly-once] first worker killed after counting ${got} of ${total}\n`)
        break
      }
      await new Promise((r) => setTimeout(r, 20))
    }
    // Killed while busy: some transactions committed, one maybe open. The next worker takes the
    // same static membership id, so its producer's id is the same too and fences the open one.
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
