/**
 * Every place the kafka transport reaches into kafkajs' internals, each with why, what it changes
 * and how to tell it is still needed. It does not decide when to revoke or what to deliver.
 */
import type { Broker, Cluster, Kafka, KafkaMessage } from 'kafkajs'
import { BrokerError } from '../../base/errors.js'
import type { AbortedTransaction, FetchedMessage } from './abortedFilter.js'
import { abortedFilter } from './abortedFilter.js'
import { copartitionedAssigner } from './copartitionedAssigner.js'

/**
 * The kafkajs version every patch below was written against and checked with. When the installed
 * kafkajs differs, `kafkajsPatches.test.ts` fails: re-check each patch against the new source, then
 * update this.
 */
export const KAFKAJS_VERSION = '2.2.4'

// ---- 1. Revoke before rejoin ------------------------------------------------------------------

/**
 * Runs `beforeJoin` before every (re)join of the consumer group that `cluster` belongs to, and
 * holds the join until it resolves.
 *
 * Why: kafkajs has no rebalance listener. When a heartbeat or a commit reports the group
 * rebalancing, it rejoins on its own and replaces the assignment; the `TransportConsumer` contract
 * needs `onRevoke` (drain, commit) first, while the member still belongs to the old generation.
 *
 * What: on this one `Cluster` instance (the consumer's own, which kafkajs hands the partition
 * assigner), `findGroupCoordinator` is replaced by one that awaits `beforeJoin()` (when it returns
 * a promise) and then looks the coordinator up as before. kafkajs' `ConsumerGroup` starts every
 * join with that lookup (`src/consumer/consumerGroup.js`, `[PRIVATE.JOIN]`); its only other caller
 * on a consumer's cluster is `consumer.describeGroup()`, which Mephisto never calls.
 *
 * Still needed while kafkajs offers no revoke callback. It still works while the join starts with
 * `this.cluster.findGroupCoordinator`; if it stopped running, the Kafka transport conformance test
 * "two members split partitions co-partitioned, revoke before assign" and the Kafka test "revokes
 * at once when a rebalance starts during a blocked onBatch" fail.
 */
export function beforeEveryJoin(cluster: Cluster, beforeJoin: () => Promise<unknown> | undefined): void {
  const lookup = cluster.findGroupCoordinator.bind(cluster)
  cluster.findGroupCoordinator = async (group) => {
    const pending = beforeJoin()
    if (pending !== undefined) await pending
    return lookup(group)
  }
}

// ---- 2. Records of aborted transactions ---------------------------------------------------------

/** Set on records of aborted transactions that kafkajs let through. */
const ABORTED = Symbol('mephisto.abortedTransaction')

/**
 * Marks the records of aborted transactions in every fetch response of the consumer that `cluster`
 * belongs to, by the rule of {@link abortedFilter}; {@link isMarkedAborted} tells them apart.
 *
 * Why: with read-committed isolation the client drops aborted transactional records itself.
 * kafkajs' filter (`src/consumer/filterAbortedMessages.js`) takes the aborted transactions in the
 * order the broker lists them (abort order, not first offset) and starts at most one per record,
 * so when transactions of several producers interleave (exactly-once workers writing one output
 * partition) records of aborted transactions reach `eachBatch`.
 *
 * What: `findBroker` on this one `Cluster` instance is wrapped so that each broker it returns gets
 * its `fetch` wrapped once; the decoded response (`responses[].partitions[]` with
 * `abortedTransactions`, and `messages[]` with `batchContext` and `isControlRecord`) gets a symbol
 * property on each aborted record and is otherwise left as it is, so kafkajs still moves its
 * position past everything fetched. kafkajs' `Batch` filters the same message objects into
 * `eachBatch` (`src/consumer/batch.js`), which is where the mark is read.
 *
 * Still needed while `filterAbortedMessages.js` uses an `if` (not a loop) over an unsorted list.
 * When kafkajs sorts the list by `firstOffset` and takes every transaction that starts at or
 * before a record, this patch can go. The Kafka test "skips records of aborted transactions that
 * interleave" (kafkaConsumer.kafka.test.ts) shows whether it still takes effect.
 */
export function markAbortedRecords(cluster: Cluster): void {
  const find = cluster.findBroker.bind(cluster)
  const wrapped = new WeakSet<Broker>()
  cluster.findBroker = async (node) => {
    const broker = await find(node)
    if (wrapped.has(broker)) return broker
    wrapped.add(broker)
    const fetch = broker.fetch.bind(broker)
    broker.fetch = async (request) => {
      const response = (await fetch(request)) as {
        responses?: {
          partitions?: { abortedTransactions?: AbortedTransaction[]; messages?: FetchedMessage[] }[]
        }[]
      }
      for (const topic of response.responses ?? []) {
        for (const p of topic.partitions ?? []) {
          if (!p.abortedTransactions?.length || !p.messages) continue
          const isAborted = abortedFilter(p.abortedTransactions)
          for (const m of p.messages) {
            if (isAborted(m) && !m.isControlRecord) (m as unknown as Record<symbol, boolean>)[ABORTED] = true
          }
        }
      }
      return response
    }
    return broker
  }
}

/** True for a record that {@link markAbortedRecords} found in an aborted transaction. */
export function isMarkedAborted(message: KafkaMessage): boolean {
  return (message as unknown as Record<symbol, boolean>)[ABORTED] === true
}

// ---- 3. Reading without a group -----------------------------------------------------------------

/** A partition of a decoded fetch response, as kafkajs' `Broker.fetch` returns it (untyped there). */
export interface FetchedPartition {
  partition: number
  errorCode: number
  highWatermark: string
  lastStableOffset?: string
  abortedTransactions?: AbortedTransaction[]
  messages: FetchedMessage[]
}

export interface FetchResponse {
  responses: { topicName: string; partitions: FetchedPartition[] }[]
}

export type FetchRequest = Parameters<Broker['fetch']>[0]

/**
 * A kafkajs `Cluster` of its own (connections, metadata, partition leaders), for reading offset
 * ranges outside any consumer group. Nothing in kafkajs is changed: this relies on internals.
 *
 * Why: kafkajs has no `assign()`, and a throwaway group costs a join and a sync per read.
 *
 * What: creates a consumer that is never run, only to receive its `Cluster` through the partition
 * assigner factory, which `kafka.consumer()` calls at once with it (`src/consumer/index.js`). The
 * cluster is then used through its typed but undocumented methods, and {@link fetchFrom} sends
 * fetch requests to a broker directly; their responses are not filtered at all (control records
 * and aborted records included: the reader applies {@link abortedFilter} itself).
 *
 * Still needed while kafkajs has no manual assignment or fetch API. If `kafka.consumer()` stopped
 * calling the factory, this throws; if the response shape changed, the table-recovery reads of
 * the Kafka transport conformance test fail.
 */
export function standaloneCluster(kafka: Kafka): Cluster {
  let captured: Cluster | undefined
  kafka.consumer({
    groupId: 'mephisto-reader-unused',
    allowAutoTopicCreation: false,
    partitionAssigners: [copartitionedAssigner((c) => (captured = c))],
  })
  if (captured === undefined) throw new BrokerError('kafkajs did not create a cluster for the reader')
  return captured
}

/** One fetch request straight to broker `nodeId` of a {@link standaloneCluster}. */
export async function fetchFrom(
  cluster: Cluster,
  nodeId: string,
  request: FetchRequest,
): Promise<FetchResponse> {
  const broker = await cluster.findBroker({ nodeId })
  return (await broker.fetch(request)) as FetchResponse
}
