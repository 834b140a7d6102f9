// The names a Monitor subclass reads its counters by (`this.messagesReceived`, `this.topics`, ...),
// from when each was a field of its own: each reads the same counter of `this.state`, the current
// MonitorState. Read-only, and no counting here: the hooks count into the state directly.
import type { TopicPartition } from '../transport/transport.js'
import type { LatencySeries } from './latencySeries.js'
import type { MonitorState, PartitionOffsets, StreamStats, TableStats, TopicStats } from './monitorState.js'
import type { RateCounter } from './rateCounter.js'

/**
 * `Monitor`'s base: its counters under their own names, for subclasses. Each getter reads the
 * current state, so it sees a reset at once. New code may read `this.state` instead.
 */
export abstract class MonitorCounters {
  /** Everything counted since the monitor was made or last reset. */
  protected abstract readonly state: MonitorState

  protected get startedAt(): number {
    return this.state.startedAt
  }

  protected get messagesReceived(): number {
    return this.state.messagesReceived
  }

  protected get messagesReceivedBytes(): number {
    return this.state.messagesReceivedBytes
  }

  protected get messagesActive(): number {
    return this.state.messagesActive
  }

  protected get messagesSent(): number {
    return this.state.messagesSent
  }

  protected get messagesSentBytes(): number {
    return this.state.messagesSentBytes
  }

  protected get topics(): Map<string, TopicStats> {
    return this.state.topics
  }

  protected get eventsTotal(): number {
    return this.state.eventsTotal
  }

  protected get eventsActive(): number {
    return this.state.eventsActive
  }

  protected get eventRuntime(): LatencySeries {
    return this.state.eventRuntime
  }

  protected get streams(): Map<string, StreamStats> {
    return this.state.streams
  }

  protected get tables(): Map<string, TableStats> {
    return this.state.tables
  }

  protected get commitsTotal(): number {
    return this.state.commitsTotal
  }

  protected get commitLatency(): LatencySeries {
    return this.state.commitLatency
  }

  protected get sendsCompleted(): number {
    return this.state.sendsCompleted
  }

  protected get sendErrors(): number {
    return this.state.sendErrors
  }

  protected get sendsInFlight(): number {
    return this.state.sendsInFlight
  }

  protected get sendLatency(): LatencySeries {
    return this.state.sendLatency
  }

  protected get assignmentsCompleted(): number {
    return this.state.assignmentsCompleted
  }

  protected get assignmentErrors(): number {
    return this.state.assignmentErrors
  }

  protected get assignmentLatency(): LatencySeries {
    return this.state.assignmentLatency
  }

  protected get rebalancesTotal(): number {
    return this.state.rebalancesTotal
  }

  protected get rebalancesActive(): number {
    return this.state.rebalancesActive
  }

  protected get rebalanceLatency(): LatencySeries {
    return this.state.rebalanceLatency
  }

  protected get webRequests(): number {
    return this.state.webRequests
  }

  protected get webByStatus(): Map<string, number> {
    return this.state.webByStatus
  }

  protected get webLatency(): LatencySeries {
    return this.state.webLatency
  }

  protected get dlqTotal(): number {
    return this.state.dlqTotal
  }

  protected get dlqByDlqTopic(): Map<string, number> {
    return this.state.dlqByDlqTopic
  }

  protected get dlqBySourceTopic(): Map<string, number> {
    return this.state.dlqBySourceTopic
  }

  protected get skipsTotal(): number {
    return this.state.skipsTotal
  }

  protected get restartsTotal(): number {
    return this.state.restartsTotal
  }

  protected get lastRestartReason(): string | null {
    return this.state.lastRestartReason
  }

  protected get skipsByStream(): Map<string, number> {
    return this.state.skipsByStream
  }

  protected get recovery(): Map<string, Map<number, { done: number; total: number }>> {
    return this.state.recovery
  }

  protected get eventRate(): RateCounter {
    return this.state.eventRate
  }

  protected get unratedEvents(): number {
    return this.state.unratedEvents
  }

  protected get receivedRate(): RateCounter {
    return this.state.receivedRate
  }

  protected get unratedReceived(): number {
    return this.state.unratedReceived
  }

  protected get sentRate(): RateCounter {
    return this.state.sentRate
  }

  protected latencySeries(): LatencySeries {
    return this.state.latencySeries()
  }

  protected topic(name: string): TopicStats {
    return this.state.topic(name)
  }

  protected partition(tp: TopicPartition): PartitionOffsets {
    return this.state.partition(tp)
  }

  protected stream(name: string): StreamStats {
    return this.state.stream(name)
  }

  protected table(name: string): TableStats {
    return this.state.table(name)
  }
}
