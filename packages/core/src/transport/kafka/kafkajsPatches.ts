/**
 * Every place the kafka transport reaches into kafkajs' internals, each with why, what it changes
 * and how to tell it is still needed. It does not decide when to revoke or what to deliver.
 */
import { createRequire } from 'node:module'
import type { Broker, Cluster, Kafka, KafkaMessage } from 'kafkajs'
import kafkajs from 'kafkajs'
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
    partitionAssigners: [copartitionedAssigner({ onCluster: (c) => (captured = c) })],
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

// ---- 4. No timer for an empty request queue ---------------------------------------------------

/** What {@link noTimerForEmptyQueue} reads of kafkajs' `RequestQueue` (`src/network/requestQueue`). */
export interface RequestQueueInternals {
  pending: unknown[]
  throttleCheckTimeoutId: ReturnType<typeof setTimeout> | null
  scheduleCheckPendingRequests(): void
  checkPendingRequests(): void
  destroy(): void
}

/** kafkajs' `RequestQueue` class: one per broker connection. */
export function requestQueueClass(): new (options: Record<string, unknown>) => RequestQueueInternals {
  return createRequire(import.meta.url)('kafkajs/src/network/requestQueue/index.js')
}

/** Set on kafkajs' `scheduleCheckPendingRequests` once it is wrapped, so it is wrapped once. */
const NO_TIMER_WHEN_EMPTY = Symbol.for('mephisto.noTimerForEmptyQueue')

/**
 * Makes kafkajs' request queues schedule their pending-request check only when a request is
 * pending. Installed once per process, when this module loads (every Kafka client Mephisto creates
 * goes through a module that imports it), for every kafkajs client of the process.
 *
 * Why: `scheduleCheckPendingRequests` sets a timer of `throttledUntil - Date.now()` ms when nothing
 * is pending, and `throttledUntil` is -1 unless the broker throttled the client: a negative delay.
 * Node 24 warns about it (`TimeoutNegativeWarning: -17... is a negative number`) on the stderr
 * of every process that talks to Kafka, and runs the timer after 1 ms instead; the timer checks the
 * queue and schedules itself again, so each connection also wakes the process every millisecond.
 *
 * What: the method of kafkajs' `RequestQueue` class is wrapped so that it returns at once when no
 * request is pending, and otherwise runs as before (then its delay is the throttle's end or 10 ms,
 * never negative). Nothing is lost: a request only becomes pending in `push()`, which schedules the
 * check itself. Other warnings are not touched.
 *
 * Still needed while kafkajs' `scheduleCheckPendingRequests` (`src/network/requestQueue/index.js`)
 * computes its delay without checking for an empty queue or clamping it at 0.
 * `kafkajsPatches.test.ts` shows that the unwrapped method still sets a negative timer and that
 * the wrapped one sets none; if kafkajs fixes it, the first of those fails: remove this patch.
 */
export function noTimerForEmptyQueue(): void {
  const proto = requestQueueClass().prototype
  const schedule = proto.scheduleCheckPendingRequests
  if ((schedule as unknown as Record<symbol, unknown>)[NO_TIMER_WHEN_EMPTY]) return
  const wrapped = function (this: RequestQueueInternals): void {
    if (this.pending.length === 0) return
    schedule.call(this)
  }
  Object.defineProperty(wrapped, NO_TIMER_WHEN_EMPTY, { value: schedule })
  proto.scheduleCheckPendingRequests = wrapped
}

/** kafkajs' own `scheduleCheckPendingRequests`, for the test that shows the patch is still needed. */
export function unpatchedScheduleCheck(): (this: RequestQueueInternals) => void {
  const current = requestQueueClass().prototype.scheduleCheckPendingRequests
  return ((current as unknown as Record<symbol, unknown>)[NO_TIMER_WHEN_EMPTY] ?? current) as (
    this: RequestQueueInternals,
  ) => void
}

// ---- 5. The leader's user data in a member's assignment ------------------------------------------

/**
 * Hands `onUserData` the user data of every assignment the consumer that `cluster` belongs to
 * receives from its group leader, before kafkajs applies the assignment.
 *
 * Why: the leader's assigner sends each member its standby partitions in the assignment's user
 * data (copartitionedAssigner.ts); kafkajs decodes the assignment and keeps only its partitions,
 * with no hook for the rest.
 *
 * What: on this one `Cluster` instance, `findGroupCoordinator` is wrapped so that the coordinator
 * it returns gets its `syncGroup` wrapped once; the response (`{ memberAssignment: Buffer }`) is
 * decoded with kafkajs' own `AssignerProtocol.MemberAssignment` and returned unchanged. kafkajs'
 * `ConsumerGroup` finds the coordinator at every join and sends SyncGroup to it
 * (`src/consumer/consumerGroup.js`, `[PRIVATE.JOIN]` and `[PRIVATE.SYNC]`).
 *
 * Still needed while kafkajs' `[PRIVATE.SYNC]` drops `userData` of the decoded assignment. If it
 * stopped taking effect, the transport conformance test "places standbyReplicas copies ..." fails
 * on Kafka (every member would follow every partition).
 */
export function receiveAssignmentUserData(
  cluster: Cluster,
  onUserData: (userData: Buffer | null) => void,
): void {
  const lookup = cluster.findGroupCoordinator.bind(cluster)
  const wrapped = new WeakSet<Broker>()
  cluster.findGroupCoordinator = async (group) => {
    const found = await lookup(group)
    if (wrapped.has(found)) return found
    wrapped.add(found)
    // kafkajs' `Broker` type leaves out the group calls.
    const coordinator = found as Broker & { syncGroup(request: unknown): Promise<SyncGroupResponse> }
    const sync = coordinator.syncGroup.bind(coordinator)
    coordinator.syncGroup = async (request) => {
      const response = await sync(request)
      const decoded = kafkajs.AssignerProtocol.MemberAssignment.decode(response.memberAssignment)
      onUserData(decoded?.userData ?? null)
      return response
    }
    return found
  }
}

/** kafkajs' decoded SyncGroup response (`src/protocol/requests/syncGroup`). */
interface SyncGroupResponse {
  memberAssignment: Buffer
}

try {
  noTimerForEmptyQueue()
} catch {
  // kafkajs' sources are not where Node resolves them (an app bundled with kafkajs inside): the
  // warning stays, nothing else changes.
}
