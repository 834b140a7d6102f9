/**
 * One read-committed Fetch from one broker, without a fetch session, answering per partition: its
 * batches or its error. Group consumers and range reads share it. It does not decode records,
 * track positions or retry.
 */
import type { Broker, ClusterMetadata } from '@platformatic/kafka'
import type { KafkaClient } from './client.js'
import { kafkaErrorId } from './errors.js'
import type { FetchResponse } from './fetchResponse.js'
import { fetchApi } from './fetchResponse.js'
import type { AbortedTransaction } from './records.js'

const READ_COMMITTED = 1
/** A sessionless fetch (KIP-227): no session id, the final epoch. */
const NO_SESSION_ID = 0
const FINAL_EPOCH = -1

export interface FetchLimits {
  /** How long the broker may hold a fetch that has no data yet. */
  maxWaitTime: number
  /** Most bytes in the whole response. */
  maxBytes: number
}

/** A partition to fetch from `offset`, at most `maxBytes` (at least one whole batch is returned). */
export interface PartitionRequest {
  topic: string
  partition: number
  offset: number
  maxBytes: number
}

/** A partition's answer: its batches (possibly none), or the Kafka error id it failed with. */
export interface PartitionAnswer {
  topic: string
  partition: number
  /** The Kafka error id (`'OFFSET_OUT_OF_RANGE'`, ...) or undefined. */
  error: string | undefined
  highWatermark: number
  lastStableOffset: number
  logStartOffset: number
  abortedTransactions: AbortedTransaction[] | null
  /** The partition's record batches, undecoded (records.ts decodes them). */
  recordSet: Buffer
}

/**
 * Fetches `requests` (all led by `broker`) and answers per partition. Rejects only when the request
 * as a whole failed (network, a top-level error); a partition's error is in its answer.
 */
export async function fetchFrom(
  client: KafkaClient,
  broker: Broker,
  metadata: ClusterMetadata,
  requests: readonly PartitionRequest[],
  limits: FetchLimits,
): Promise<PartitionAnswer[]> {
  const ids = new Map<string, string>()
  const byTopic = new Map<string, PartitionRequest[]>()
  for (const r of requests) {
    const id = metadata.topics.get(r.topic)?.id
    if (!id) throw new Error(`Unknown topic ${r.topic}.`)
    ids.set(id, r.topic)
    let list = byTopic.get(id)
    if (list === undefined) byTopic.set(id, (list = []))
    list.push(r)
  }
  const topics = [...byTopic].map(([topicId, list]) => ({
    topicId,
    partitions: list.map((r) => ({
      partition: r.partition,
      currentLeaderEpoch: -1,
      fetchOffset: BigInt(r.offset),
      lastFetchedEpoch: -1,
      partitionMaxBytes: r.maxBytes,
    })),
  }))
  const connection = await client.connection(broker)
  const version = await client.version('Fetch')
  const api = fetchApi(version)
  if (api === undefined) {
    throw new Error(
      `The broker answers Fetch at version ${version} at most; this transport reads Fetch 13 to 17 (Kafka 3.1 and later).`,
    )
  }
  const response = await client.callApi<FetchResponse>(
    api,
    connection,
    limits.maxWaitTime,
    1,
    limits.maxBytes,
    READ_COMMITTED,
    NO_SESSION_ID,
    FINAL_EPOCH,
    topics,
    [],
    '',
  )
  const answers: PartitionAnswer[] = []
  for (const { topicId, partitions } of response.responses) {
    const topic = ids.get(topicId) ?? topicId
    for (const p of partitions) {
      answers.push({
        topic,
        partition: p.partitionIndex,
        error: p.errorCode === 0 ? undefined : kafkaErrorId(p.errorCode),
        highWatermark: Number(p.highWatermark),
        lastStableOffset: Number(p.lastStableOffset),
        logStartOffset: Number(p.logStartOffset),
        abortedTransactions: p.abortedTransactions,
        recordSet: p.recordSet,
      })
    }
  }
  return answers
}

/** The leader broker of each partition: node id -> its broker and partitions. */
export function byLeader<T extends { topic: string; partition: number }>(
  metadata: ClusterMetadata,
  partitions: readonly T[],
): Map<number, { broker: Broker; partitions: T[] }> {
  const result = new Map<number, { broker: Broker; partitions: T[] }>()
  for (const tp of partitions) {
    const leader = metadata.topics.get(tp.topic)?.partitions[tp.partition]?.leader ?? -1
    const broker = metadata.brokers.get(leader)
    if (broker === undefined) continue
    let entry = result.get(leader)
    if (entry === undefined) result.set(leader, (entry = { broker, partitions: [] }))
    entry.partitions.push(tp)
  }
  return result
}
