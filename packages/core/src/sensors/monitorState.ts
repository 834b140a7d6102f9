// Every counter a Monitor keeps, created in one place (MonitorState's constructor) so that a reset,
// which makes a new one, cannot forget any; and the lookups that find or create the counters of a
// topic, partition, stream or table. It hooks into nothing and builds no snapshot.
import type { TopicPartition } from '../transport/transport.js'
import { EventTimingSampler } from './eventTiming.js'
import { LatencySeries } from './latencySeries.js'
import type { DlqMessagesSnapshot, WebRequestsSnapshot } from './monitorSnapshot.js'
import { RateCounter } from './rateCounter.js'

/** A Monitor's options with their defaults applied. */
export interface MonitorSettings {
  now: () => number
  /** Whole seconds, in milliseconds. */
  rateWindowMs: number
  maxLatencySamples: number
  eventTimingsPerSec: number
}

/** Per-topic counters. */
export interface TopicStats {
  received: number
  receivedBytes: number
  sent: number
  sentBytes: number
  sendsCompleted: number
  sendErrors: number
  sendLatency: LatencySeries
  /** Offsets by partition. `-1` means not known yet. */
  partitions: Map<number, PartitionOffsets>
}

export interface PartitionOffsets {
  read: number
  committed: number
  end: number
}

export interface StreamStats {
  total: number
  active: number
  runtime: LatencySeries
}

export interface TableStats {
  gets: number
  sets: number
  deletes: number
  lateEvents: number
}

/**
 * Everything a Monitor has counted since it was made or last reset. Add a counter here, with its
 * initial value, and it is reset with the rest.
 */
export class MonitorState {
  /** When counting (re)started, on the monitor's clock; rates use it while younger than the window. */
  startedAt: number

  messagesReceived = 0
  messagesReceivedBytes = 0
  messagesActive = 0
  messagesSent = 0
  messagesSentBytes = 0
  readonly topics = new Map<string, TopicStats>()

  eventsTotal = 0
  eventsActive = 0
  readonly eventRuntime: LatencySeries
  readonly streams = new Map<string, StreamStats>()
  readonly eventTiming: EventTimingSampler

  readonly tables = new Map<string, TableStats>()

  commitsTotal = 0
  readonly commitLatency: LatencySeries

  sendsCompleted = 0
  sendErrors = 0
  sendsInFlight = 0
  readonly sendLatency: LatencySeries

  assignmentsCompleted = 0
  assignmentErrors = 0
  readonly assignmentLatency: LatencySeries

  rebalancesTotal = 0
  rebalancesActive = 0
  readonly rebalanceLatency: LatencySeries

  webRequests = 0
  readonly webByStatus = new Map<string, number>()
  /** `method \0 route \0 status` -> its count. */
  readonly webRequestCounts = new Map<string, WebRequestsSnapshot>()
  readonly webLatency: LatencySeries

  dlqTotal = 0
  readonly dlqByDlqTopic = new Map<string, number>()
  readonly dlqBySourceTopic = new Map<string, number>()
  /** `source topic \0 dlq topic` -> its count. */
  readonly dlqMessageCounts = new Map<string, DlqMessagesSnapshot>()

  skipsTotal = 0
  readonly skipsByStream = new Map<string, number>()
  restartsTotal = 0
  lastRestartReason: string | null = null

  /** Table -> partition -> replay progress. */
  readonly recovery = new Map<string, Map<number, { done: number; total: number }>>()

  readonly eventRate: RateCounter
  /** Events not yet in {@link eventRate} (added at the next clock reading, as received messages are). */
  unratedEvents = 0
  readonly receivedRate: RateCounter
  /**
   * Messages received and not yet in {@link receivedRate}: reading the clock per message costs more
   * than the rest of `onMessageIn`, so they are added at the next hook that reads it anyway (a timed
   * event, the offsets reported after each batch, a snapshot): at most a batch late.
   */
  unratedReceived = 0
  readonly sentRate: RateCounter

  /** One-entry caches: the hooks see the same stream and partition many times in a row. */
  lastStreamName: string | undefined = undefined
  lastStream: StreamStats | undefined = undefined
  lastTp: TopicPartition | undefined = undefined
  lastTpTopic: TopicStats | undefined = undefined
  lastTpOffsets: PartitionOffsets | undefined = undefined

  private readonly maxLatencySamples: number

  constructor(settings: MonitorSettings) {
    this.maxLatencySamples = settings.maxLatencySamples
    this.startedAt = settings.now()
    this.eventTiming = new EventTimingSampler(settings.eventTimingsPerSec, this.startedAt)
    this.eventRuntime = this.latencySeries()
    this.commitLatency = this.latencySeries()
    this.sendLatency = this.latencySeries()
    this.assignmentLatency = this.latencySeries()
    this.rebalanceLatency = this.latencySeries()
    this.webLatency = this.latencySeries()
    this.eventRate = new RateCounter(settings.rateWindowMs)
    this.receivedRate = new RateCounter(settings.rateWindowMs)
    this.sentRate = new RateCounter(settings.rateWindowMs)
  }

  latencySeries(): LatencySeries {
    return new LatencySeries(this.maxLatencySamples)
  }

  topic(name: string): TopicStats {
    let stats = this.topics.get(name)
    if (stats === undefined) {
      stats = {
        received: 0,
        receivedBytes: 0,
        sent: 0,
        sentBytes: 0,
        sendsCompleted: 0,
        sendErrors: 0,
        sendLatency: this.latencySeries(),
        partitions: new Map(),
      }
      this.topics.set(name, stats)
    }
    return stats
  }

  partition(tp: TopicPartition): PartitionOffsets {
    const partitions = this.topic(tp.topic).partitions
    let offsets = partitions.get(tp.partition)
    if (offsets === undefined) {
      offsets = { read: -1, committed: -1, end: -1 }
      partitions.set(tp.partition, offsets)
    }
    return offsets
  }

  stream(name: string): StreamStats {
    if (name === this.lastStreamName) return this.lastStream!
    let stats = this.streams.get(name)
    if (stats === undefined) {
      stats = { total: 0, active: 0, runtime: this.latencySeries() }
      this.streams.set(name, stats)
    }
    this.lastStreamName = name
    this.lastStream = stats
    return stats
  }

  table(name: string): TableStats {
    let stats = this.tables.get(name)
    if (stats === undefined) {
      stats = { gets: 0, sets: 0, deletes: 0, lateEvents: 0 }
      this.tables.set(name, stats)
    }
    return stats
  }

  /** Whether any table partition has not finished replaying its changelog. */
  get recovering(): boolean {
    for (const partitions of this.recovery.values()) {
      for (const { done, total } of partitions.values()) if (done < total) return true
    }
    return false
  }
}

/** Lag of one partition: records at or after the committed offset. Nothing committed counts from 0. */
export function lag(offsets: PartitionOffsets): number {
  if (offsets.end < 0) return 0
  return Math.max(0, offsets.end - Math.max(offsets.committed, 0))
}
