/**
 * Reads offset ranges of a topic outside any consumer group (table recovery), read-committed.
 * It does not join groups or commit; the kafkajs internals it relies on are in kafkajsPatches.ts.
 */
import type { Cluster, Kafka } from 'kafkajs'
import { BrokerError } from '../../base/errors.js'
import { KeyedLock } from '../../base/keyedLock.js'
import type { PartitionRange, RawRecord } from '../transport.js'
import { abortedFilter } from './abortedFilter.js'
import { isRetriable, kafkaErrorType, mayRetry, messageOf } from './kafkaErrors.js'
import type { FetchedPartition, FetchResponse } from './kafkajsPatches.js'
import { fetchFrom, standaloneCluster } from './kafkajsPatches.js'
import { toHeaders } from './kafkaRecords.js'

/** kafkajs' READ_COMMITTED: aborted transactional writes are never replayed into a table. */
const READ_COMMITTED = 1

export interface ReaderOptions {
  /** Most bytes fetched per partition per request. Default 4 MiB (recovery reads whole logs). */
  maxBytesPerPartition?: number
  /** Most bytes per fetch request. Default 16 MiB. */
  maxBytes?: number
  /** How long the broker may hold a fetch that has nothing yet (records of an open transaction). */
  maxWaitTimeInMs?: number
}

interface Range {
  position: number
  to: number
  /** maxBytes of the next fetch of this partition. */
  fetchBytes: number
}

/**
 * Reads offset ranges outside any consumer group, for table recovery. kafkajs has no `assign()`,
 * and a throwaway group costs a join and a sync per read (plus `group.initial.rebalance.delay.ms`,
 * 3 s on a default broker) on every partition assignment. So this fetches directly from the
 * partition leaders with kafkajs' own `Cluster`, the object kafkajs hands partition assigners;
 * one connection set per transport, reused by every read.
 */
export class KafkaReader {
  private cluster: Cluster | undefined
  private connecting: Promise<Cluster> | undefined
  private readonly maxBytesPerPartition: number
  private readonly maxBytes: number
  private readonly maxWaitTime: number
  /**
   * One fetch per broker node at a time, across concurrent reads (tables recover several
   * partitions at once). kafkajs opens a broker's fetch connection lazily and does not guard
   * against two requests opening it together: each opens a socket and all but the last leak,
   * keeping the process alive. Nothing is lost by queueing here: a broker answers the requests
   * of one connection one after another anyway, and the records of one response are delivered
   * while the next fetch is under way.
   */
  private readonly fetching = new KeyedLock<string>()

  constructor(
    private readonly kafka: Kafka,
    private readonly url: string,
    private readonly earliestOffsets: (topic: string) => Promise<Map<number, number>>,
    options: ReaderOptions = {},
  ) {
    this.maxBytesPerPartition = options.maxBytesPerPartition ?? 4 * 1024 * 1024
    this.maxBytes = options.maxBytes ?? 16 * 1024 * 1024
    this.maxWaitTime = options.maxWaitTimeInMs ?? 100
  }

  async read(
    topic: string,
    ranges: PartitionRange[],
    onRecords: (records: RawRecord[]) => void | Promise<void>,
  ): Promise<void> {
    const pending = new Map<number, Range>()
    for (const { partition, from, to } of ranges) {
      if (from < to)
        pending.set(partition, {
          position: Math.max(0, from),
          to,
          fetchBytes: this.firstFetchBytes(to - from),
        })
    }
    if (pending.size === 0) return
    const cluster = await this.connect()
    await this.addTopic(cluster, topic)
    const known = new Set(cluster.findTopicPartitionMetadata(topic).map((p) => p.partitionId))
    for (const partition of pending.keys()) {
      if (!known.has(partition)) {
        throw new BrokerError(`Cannot read ${topic}[${partition}]: the topic has ${known.size} partition(s).`)
      }
    }
    while (pending.size > 0) {
      let leaders: Record<string, number[]>
      try {
        leaders = cluster.findLeaderForPartitions(topic, [...pending.keys()])
      } catch (error) {
        await this.recover(cluster, error)
        continue
      }
      // One fetch per leader at a time; partitions of one response are delivered one after another.
      await Promise.all(
        Object.entries(leaders).map(async ([nodeId, partitions]) => {
          let response: FetchResponse
          try {
            response = await this.fetching.run(nodeId, () =>
              fetchFrom(cluster, nodeId, {
                isolationLevel: READ_COMMITTED,
                maxWaitTime: this.maxWaitTime,
                minBytes: 1,
                maxBytes: this.maxBytes,
                topics: [
                  {
                    topic,
                    partitions: partitions.map((partition) => {
                      const range = pending.get(partition)!
                      const maxBytes = range.fetchBytes
                      // Small first, then doubling: a long range soon fetches at full size.
                      range.fetchBytes = Math.min(this.maxBytesPerPartition, range.fetchBytes * 2)
                      return { partition, fetchOffset: String(range.position), maxBytes }
                    }),
                  },
                ],
              }),
            )
          } catch (error) {
            if (kafkaErrorType(error) === 'OFFSET_OUT_OF_RANGE') {
              await this.skipToEarliest(topic, pending)
              return
            }
            await this.recover(cluster, error)
            return
          }
          for (const { partitions: fetched } of response.responses) {
            for (const data of fetched) {
              const range = pending.get(data.partition)
              if (range === undefined) continue
              await this.deliver(topic, range, data, onRecords)
              if (range.position >= range.to) pending.delete(data.partition)
            }
          }
        }),
      )
    }
  }

  /**
   * The broker reads (and kafkajs decodes) up to this many bytes even when a few records are
   * wanted, so a short range starts with a small fetch. At least one whole record batch is
   * always returned (KIP-74), so a small limit never stalls a read.
   */
  private firstFetchBytes(records: number): number {
    return Math.min(this.maxBytesPerPartition, Math.max(16 * 1024, records * 256))
  }

  async close(): Promise<void> {
    const cluster = this.cluster
    this.cluster = undefined
    this.connecting = undefined
    await cluster?.disconnect().catch(() => {})
  }

  private async deliver(
    topic: string,
    range: Range,
    data: FetchedPartition,
    onRecords: (records: RawRecord[]) => void | Promise<void>,
  ): Promise<void> {
    const { partition } = data
    const messages = data.messages
    const highWatermark = Number(data.highWatermark)
    if (messages.length === 0) {
      // Nothing at our position: either the range asks for more than the log holds, or the rest
      // is an open transaction (read-committed stops at the last stable offset) and we wait.
      if (range.position >= highWatermark && range.to > highWatermark) {
        throw new BrokerError(
          `Cannot read ${topic}[${partition}] up to offset ${range.to}: the partition ends at ${highWatermark}. ` +
            'Read up to the end offset (admin.endOffsets) taken before reading.',
        )
      }
      return
    }
    const aborted = abortedFilter(data.abortedTransactions)
    const records: RawRecord[] = []
    let last = range.position - 1
    for (const m of messages) {
      const offset = Number(m.offset)
      // A fetch returns whole record batches, so it may start before the offset asked for.
      if (offset < range.position) continue
      last = offset
      if (offset >= range.to) break
      // Called for every message, control records included: an abort marker ends its transaction.
      const dropped = aborted(m)
      if (m.isControlRecord || dropped) continue
      records.push({
        topic,
        partition,
        offset,
        timestamp: Number(m.timestamp),
        key: m.key,
        value: m.value,
        headers: toHeaders(m.headers),
      })
    }
    // Past the last message seen, control records and compacted gaps included.
    range.position = Math.max(range.position, last + 1)
    if (records.length > 0) await onRecords(records)
  }

  private async skipToEarliest(topic: string, pending: Map<number, Range>): Promise<void> {
    const earliest = await this.earliestOffsets(topic)
    for (const [partition, range] of pending) {
      const start = earliest.get(partition) ?? 0
      if (range.position < start) range.position = start
      if (range.position >= range.to) pending.delete(partition)
    }
  }

  private async recover(cluster: Cluster, error: unknown): Promise<void> {
    if (!isRetriable(error)) {
      throw new BrokerError(`Reading from ${this.url} failed: ${messageOf(error)}`, {
        cause: error,
        retriable: mayRetry(error),
      })
    }
    await new Promise((r) => setTimeout(r, 100))
    await cluster.refreshMetadata()
  }

  private async addTopic(cluster: Cluster, topic: string): Promise<void> {
    try {
      await cluster.addTargetTopic(topic)
    } catch (error) {
      throw new BrokerError(`Cannot read topic "${topic}" on ${this.url}: ${messageOf(error)}`, {
        cause: error,
        retriable: mayRetry(error),
      })
    }
  }

  private connect(): Promise<Cluster> {
    this.connecting ??= (async () => {
      const cluster = standaloneCluster(this.kafka)
      await cluster.connect()
      this.cluster = cluster
      return cluster
    })().catch((error: unknown) => {
      this.connecting = undefined
      throw new BrokerError(`Cannot connect the reader to ${this.url}: ${messageOf(error)}`, {
        cause: error,
        retriable: mayRetry(error),
      })
    })
    return this.connecting
  }
}
