/**
 * Reads offset ranges of a topic outside any consumer group (table recovery, standbys, tools),
 * read committed, straight from the partition leaders. It does not join groups or commit.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { PartitionRange, RawRecord } from '@mephisto/core'
import { BrokerError } from '@mephisto/core'
import type { KafkaClient } from './client.js'
import { LEADER_MOVED, mayRetry, messageOf } from './errors.js'
import type { PartitionAnswer, PartitionRequest } from './fetch.js'
import { byLeader, fetchFrom } from './fetch.js'
import type { Settings } from './options.js'
import { decodeBatches } from './records.js'

interface Range {
  topic: string
  partition: number
  position: number
  to: number
  /** maxBytes of the next fetch of this partition: small first, doubling (a short range reads little). */
  fetchBytes: number
}

/** Reads offset ranges with one connection set per transport, shared by every read. */
export class RangeReader {
  constructor(
    private readonly client: KafkaClient,
    private readonly url: string,
    private readonly settings: Settings['reader'],
    /** The first available offset of each partition (after retention or compaction). */
    private readonly startOffsets: (topic: string) => Promise<Map<number, number>>,
  ) {}

  async read(
    topic: string,
    ranges: PartitionRange[],
    onRecords: (records: RawRecord[]) => void | Promise<void>,
  ): Promise<void> {
    const pending = new Map<number, Range>()
    for (const { partition, from, to } of ranges) {
      if (from < to) {
        pending.set(partition, {
          topic,
          partition,
          position: Math.max(0, from),
          to,
          fetchBytes: Math.min(this.settings.maxBytesPerPartition, Math.max(16 * 1024, (to - from) * 256)),
        })
      }
    }
    if (pending.size === 0) return
    let metadata = await this.metadata(topic, false)
    const count = metadata.topics.get(topic)?.partitionsCount ?? 0
    for (const partition of pending.keys()) {
      if (partition < 0 || partition >= count) {
        throw new BrokerError(`Cannot read ${topic}[${partition}]: the topic has ${count} partition(s).`)
      }
    }
    for (let failures = 0; pending.size > 0; ) {
      const leaders = byLeader(metadata, [...pending.values()])
      let moved = leaders.size === 0
      await Promise.all(
        [...leaders.values()].map(async ({ broker, partitions }) => {
          const requests: PartitionRequest[] = partitions.map((r) => {
            const maxBytes = r.fetchBytes
            r.fetchBytes = Math.min(this.settings.maxBytesPerPartition, r.fetchBytes * 2)
            return { topic, partition: r.partition, offset: r.position, maxBytes }
          })
          let answers: PartitionAnswer[]
          try {
            answers = await fetchFrom(this.client, broker, metadata, requests, this.settings)
          } catch (error) {
            if (!mayRetry(error) || ++failures > 100) throw this.wrap(error)
            moved = true
            return
          }
          for (const answer of answers) {
            const range = pending.get(answer.partition)
            if (range === undefined) continue
            if (answer.error === 'OFFSET_OUT_OF_RANGE') {
              await this.skipToEarliest(topic, pending)
            } else if (answer.error !== undefined) {
              // A leader moving, or a partition created a moment ago that does not serve yet.
              const transient = [...LEADER_MOVED, 'UNKNOWN_TOPIC_OR_PARTITION'].includes(answer.error)
              if (!transient || ++failures > 100) {
                throw new BrokerError(
                  `Reading ${topic}[${answer.partition}] from ${this.url} failed: ${answer.error}`,
                  {
                    retriable: transient,
                  },
                )
              }
              moved = true
            } else {
              await this.deliver(range, answer, onRecords)
              if (range.position >= range.to) pending.delete(answer.partition)
            }
          }
        }),
      )
      if (moved && pending.size > 0) {
        this.client.clearMetadata()
        await sleep(100)
        metadata = await this.metadata(topic, true)
      }
    }
  }

  private async deliver(
    range: Range,
    answer: PartitionAnswer,
    onRecords: (records: RawRecord[]) => void | Promise<void>,
  ): Promise<void> {
    const { records, next, batches } = decodeBatches(
      range.topic,
      range.partition,
      answer.recordSet,
      answer.abortedTransactions,
      range.position,
      range.to,
    )
    if (batches === 0) {
      // Nothing at our position: either the range asks for more than the log holds, or the rest is
      // an open transaction (read committed stops at the last stable offset) and we wait.
      if (range.position >= answer.highWatermark && range.to > answer.highWatermark) {
        throw new BrokerError(
          `Cannot read ${range.topic}[${range.partition}] up to offset ${range.to}: the partition ends at ` +
            `${answer.highWatermark}. Read up to the end offset (admin.endOffsets) taken before reading.`,
        )
      }
      return
    }
    range.position = Math.max(range.position, next)
    if (records.length > 0) await onRecords(records)
  }

  private async skipToEarliest(topic: string, pending: Map<number, Range>): Promise<void> {
    const earliest = await this.startOffsets(topic)
    for (const [partition, range] of pending) {
      const start = earliest.get(partition) ?? 0
      if (range.position < start) range.position = start
      if (range.position >= range.to) pending.delete(partition)
    }
  }

  private async metadata(topic: string, force: boolean) {
    try {
      return await this.client.metadata([topic], force)
    } catch (error) {
      throw new BrokerError(`Cannot read topic "${topic}" on ${this.url}: ${messageOf(error)}`, {
        cause: error,
        retriable: mayRetry(error),
      })
    }
  }

  private wrap(error: unknown): BrokerError {
    return new BrokerError(`Reading from ${this.url} failed: ${messageOf(error)}`, {
      cause: error,
      retriable: mayRetry(error),
    })
  }
}
