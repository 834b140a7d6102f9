// Reads a Monitor's counters into a snapshot: sorting partitions, computing percentiles and rates,
// copying maps into plain records. It counts nothing and changes no counter.
import type { MonitorSnapshot, PartitionSnapshot, RecoverySnapshot } from './monitorSnapshot.js'
import { lag, type MonitorState, type TopicStats } from './monitorState.js'
import type { AgentProgress } from './sensor.js'

/**
 * Everything `state` holds, as a fresh plain object (safe to keep, mutate or `JSON.stringify`).
 * `now` is the monitor's clock; `windowMs` its rate window; `agents` the running worker's agents
 * as its probe reads them now.
 */
export function takeSnapshot(
  state: MonitorState,
  now: number,
  windowMs: number,
  agents: readonly AgentProgress[],
): MonitorSnapshot {
  const topics = [...state.topics].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  const partitions: PartitionSnapshot[] = []
  for (const [topic, stats] of topics) {
    const sorted = [...stats.partitions].sort(([a], [b]) => a - b)
    for (const [partition, o] of sorted) {
      partitions.push({
        topic,
        partition,
        read: o.read,
        committed: o.committed,
        end: o.end,
        lag: lag(o),
      })
    }
  }
  const recovery: RecoverySnapshot[] = []
  for (const [table, byPartition] of state.recovery) {
    for (const [partition, { done, total }] of byPartition) recovery.push({ table, partition, done, total })
  }
  recovery.sort((a, b) => (a.table < b.table ? -1 : a.table > b.table ? 1 : a.partition - b.partition))
  // Object.fromEntries defines own properties, so a topic named `__proto__` (legal in Kafka) is kept.
  const byTopic = <T>(
    pick: (stats: TopicStats) => T,
    keep: (stats: TopicStats) => boolean,
  ): Record<string, T> =>
    Object.fromEntries(topics.filter(([, stats]) => keep(stats)).map(([name, stats]) => [name, pick(stats)]))
  return {
    messages: {
      receivedTotal: state.messagesReceived,
      receivedBytesTotal: state.messagesReceivedBytes,
      receivedByTopic: byTopic(
        (t) => t.received,
        (t) => t.received > 0,
      ),
      active: state.messagesActive,
      sentTotal: state.messagesSent,
      sentBytesTotal: state.messagesSentBytes,
      sentByTopic: byTopic(
        (t) => t.sent,
        (t) => t.sent > 0,
      ),
    },
    events: {
      total: state.eventsTotal,
      active: state.eventsActive,
      runtime: state.eventRuntime.stats(),
      byStream: Object.fromEntries(
        [...state.streams].map(([name, s]) => [
          name,
          { total: s.total, active: s.active, runtime: s.runtime.stats() },
        ]),
      ),
    },
    tables: Object.fromEntries([...state.tables].map(([name, t]) => [name, { ...t }])),
    commits: { total: state.commitsTotal, latency: state.commitLatency.stats() },
    sends: {
      total: state.sendsCompleted,
      errors: state.sendErrors,
      inFlight: state.sendsInFlight,
      latency: state.sendLatency.stats(),
      byTopic: byTopic(
        (t) => ({ total: t.sendsCompleted, errors: t.sendErrors, latency: t.sendLatency.stats() }),
        (t) => t.sent > 0 || t.sendsCompleted > 0 || t.sendErrors > 0,
      ),
    },
    assignments: {
      total: state.assignmentsCompleted,
      errors: state.assignmentErrors,
      latency: state.assignmentLatency.stats(),
    },
    rebalances: {
      total: state.rebalancesTotal,
      inProgress: state.rebalancesActive > 0,
      latency: state.rebalanceLatency.stats(),
    },
    web: {
      total: state.webRequests,
      byStatus: Object.fromEntries(state.webByStatus),
      latency: state.webLatency.stats(),
    },
    webRequests: [...state.webRequestCounts.values()].map((row) => ({ ...row })),
    dlq: {
      total: state.dlqTotal,
      byDlqTopic: Object.fromEntries(state.dlqByDlqTopic),
      bySourceTopic: Object.fromEntries(state.dlqBySourceTopic),
    },
    dlqMessages: [...state.dlqMessageCounts.values()].map((row) => ({ ...row })),
    skips: { total: state.skipsTotal, byStream: Object.fromEntries(state.skipsByStream) },
    restarts: { total: state.restartsTotal, lastReason: state.lastRestartReason },
    recovery: { recovering: state.recovering, partitions: recovery },
    agents: Object.fromEntries(
      agents.map(({ agent, oldestEventAgeMs, queued }) => [agent, { oldestEventAgeMs, queued }]),
    ),
    partitions,
    rates: {
      windowMs,
      eventsPerSec: state.eventRate.rate(now, state.startedAt),
      messagesReceivedPerSec: state.receivedRate.rate(now, state.startedAt),
      messagesSentPerSec: state.sentRate.rate(now, state.startedAt),
    },
  }
}
