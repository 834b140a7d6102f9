import { BrokerError } from '@mephisto/core'
import { Admin } from '@platformatic/kafka'
import { expect, it } from 'vitest'
import { describeKafka, kafkaBrokers, testTransport, uniqueName } from './kafka.js'

/** The broker's value of `name` for `topic`, as DescribeConfigs reports it. */
async function topicConfig(topic: string, name: string): Promise<string | null | undefined> {
  const admin = new Admin({ clientId: 'admin-test', bootstrapBrokers: kafkaBrokers().split(',') })
  try {
    const [described] = await admin.describeConfigs({
      resources: [{ resourceType: 2, resourceName: topic, configurationKeys: [name] }],
    })
    return described?.configs.find((c) => c.name === name)?.value
  } finally {
    await admin.close()
  }
}

describeKafka('admin.ensureTopics on platformatic', () => {
  it('creates topics of different configs in one call, each with its own, and leaves existing ones alone', async () => {
    const t = testTransport()
    await t.connect()
    const plain = uniqueName('ensure-plain')
    const compacted = uniqueName('ensure-compacted')
    const retained = uniqueName('ensure-retained')
    try {
      await t.admin.ensureTopics([
        { name: plain, partitions: 3 },
        { name: compacted, partitions: 1, compacted: true, config: { 'max.message.bytes': '1048576' } },
        { name: retained, partitions: 2, retentionMs: 3_600_000 },
      ])
      // Readable at once: offsets of every partition of every new topic.
      expect([...(await t.admin.endOffsets(plain)).values()]).toEqual([0, 0, 0])
      expect([...(await t.admin.startOffsets(compacted)).values()]).toEqual([0])
      expect(await t.admin.partitionCount(retained)).toBe(2)
      expect(await topicConfig(compacted, 'cleanup.policy')).toBe('compact')
      expect(await topicConfig(compacted, 'max.message.bytes')).toBe('1048576')
      expect(await topicConfig(plain, 'cleanup.policy')).toBe('delete')
      expect(await topicConfig(retained, 'retention.ms')).toBe('3600000')
      // Again, with one more: the existing three are untouched.
      const later = uniqueName('ensure-later')
      await t.admin.ensureTopics([
        { name: plain, partitions: 5 },
        { name: later, partitions: 1 },
      ])
      expect(await t.admin.partitionCount(plain)).toBe(3)
      expect(await t.admin.partitionCount(later)).toBe(1)
      await t.admin.deleteTopics([later])
    } finally {
      await t.admin.deleteTopics([plain, compacted, retained])
      await t.close()
    }
  })

  it('refuses a topic the cluster cannot create, naming it and why', async () => {
    const t = testTransport()
    await t.connect()
    const topic = uniqueName('ensure-too-many-replicas')
    try {
      const error = await t.admin.ensureTopics([{ name: topic, partitions: 1, replicas: 99 }]).catch((e) => e)
      expect(error).toBeInstanceOf(BrokerError)
      expect((error as Error).message).toMatch(new RegExp(`${topic}: INVALID_REPLICATION_FACTOR`))
      expect(await t.admin.partitionCount(topic)).toBeUndefined()
    } finally {
      await t.close()
    }
  })
})
