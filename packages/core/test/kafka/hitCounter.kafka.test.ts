import { afterAll, expect, it } from 'vitest'
import { BrokerError, KafkaTransport } from '../../src/index.js'
import { events, expected, hitCounter, tableOf, waitForTable } from './hitCounterFixture.js'
import { describeKafka, kafkaBrokers, kafkaSaslBrokers, uniqueName } from './kafka.js'

const created: { id: string; topics: string[] }[] = []

afterAll(async () => {
  if (created.length === 0) return
  const t = new KafkaTransport(kafkaBrokers().split(','))
  await t.connect()
  const all = await t.admin.listTopics()
  // The app's internal topics (changelog, DLQs, leader) are prefixed with its id.
  const mine = all.filter((name) =>
    created.some((c) => c.topics.includes(name) || name.startsWith(`${c.id}-`)),
  )
  await t.admin.deleteTopics(mine)
  await t.close()
})

describeKafka('the hit counter on Kafka', () => {
  it('counts 10,000 events produced through the app, and a restart resumes from the committed offsets', async () => {
    const id = uniqueName('hit-counter')
    const hitTopic = uniqueName('hit_count')
    created.push({ id, topics: [hitTopic] })

    const first = hitCounter(id, hitTopic)
    await first.app.start()
    const batch1 = events(10_000, 1)
    for (const hit of batch1) await first.hits.send({ key: hit.userId, value: hit })
    const want1 = expected(batch1)
    expect(await waitForTable(first.counts, want1, 60_000)).toEqual(want1)
    await first.app.stop()

    // A new worker of the same app: the table comes back from its changelog, and only events
    // after the committed offsets are processed (reprocessing would count twice).
    const second = hitCounter(id, hitTopic)
    await second.app.start()
    expect(await tableOf(second.counts)).toEqual(want1)
    const batch2 = events(1_000, 2)
    for (const hit of batch2) await second.hits.send({ key: hit.userId, value: hit })
    const want2 = expected([...batch1, ...batch2])
    expect(await waitForTable(second.counts, want2, 60_000)).toEqual(want2)
    // Nothing more arrives late (a double count would show up here).
    await new Promise((r) => setTimeout(r, 1000))
    expect(await tableOf(second.counts)).toEqual(want2)
    await second.app.stop()
  })
})

describeKafka('SASL/PLAIN', () => {
  const sasl = kafkaSaslBrokers()
  it.skipIf(!sasl)(
    'connects with the right password and refuses a wrong one with a clear error',
    async () => {
      const good = new KafkaTransport(sasl.split(','), {
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

      const bad = new KafkaTransport(sasl.split(','), {
        logger: { debug() {}, info() {}, warn() {}, error() {} },
        kafka: {
          client: {
            sasl: { mechanism: 'plain', username: 'mephisto', password: 'wrong' },
            retry: { retries: 1, initialRetryTime: 100 },
          },
        },
      })
      const error = await bad.connect().then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).toBeInstanceOf(BrokerError)
      expect((error as Error).message).toMatch(/refused authentication as "mephisto" \(SASL plain\)/)
      await bad.close()
    },
  )

  it('an unreachable broker fails connect() with a BrokerError naming it', async () => {
    const t = new KafkaTransport(['127.0.0.1:1'], {
      kafka: { client: { retry: { retries: 1, initialRetryTime: 50 }, connectionTimeout: 500 } },
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    })
    const error = await t.connect().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(BrokerError)
    expect((error as Error).message).toMatch(
      /Cannot connect to Kafka at 127\.0\.0\.1:1: .*Check that the brokers run/,
    )
    await t.close()
  })
})
