/**
 * Stream time of a windowed table, per partition: the largest event time its windowed writes have
 * seen there, and how far its windows have been closed. Windows close by it, not by the clock, so
 * a replay of old events closes the same windows with the same values as the live run did.
 *
 * It is kept in a small companion table (one value per partition, `<table>-window-time`, held in
 * memory and in its own changelog), committed with the windows it describes: a restart, or the
 * partition's next owner, resumes with the stream time it had, and a window closed before a crash
 * stays closed. It also remembers, on the app clock, when each partition's stream time last moved:
 * a partition without new events closes its windows by the clock once it has been idle `idleMs`.
 */
import type { Clock } from '../base/clock.js'
import type { TableState } from './tableState.js'

/** What the companion table stores per partition. */
export interface PartitionTime {
  /** The largest event time written to the partition's windows (ms); null before the first. */
  streamTime: number | null
  /** Every window with `end + graceMs <= closedTo` is closed (reported and removed); null: none yet. */
  closedTo: number | null
}

/** The companion table as this file uses it. `Table` implements it. */
export interface WindowTimeTable {
  state(): TableState<string, PartitionTime>
}

const NONE: PartitionTime = Object.freeze({ streamTime: null, closedTo: null }) as PartitionTime

export class WindowTime {
  /** When stream time last moved, per partition, on the app clock; per worker (its table state). */
  private readonly movedAt = new WeakMap<TableState<string, PartitionTime>, Map<number, number>>()

  constructor(
    private readonly companion: WindowTimeTable,
    /** How long a partition's stream time may stand still before its windows close by the clock. */
    readonly idleMs: number,
  ) {}

  /** The partition's stream time and close mark. Synchronous: the companion lives in memory. */
  get(partition: number): PartitionTime {
    return this.companion.state().readSync(partition, key(partition)) ?? NONE
  }

  /**
   * Moves the partition's stream time to `time` if that is later; returns the stream time. Must
   * run where the partition's tables may be written (its event, or a job on an owned partition).
   */
  advance(partition: number, time: number, clock: Clock): number {
    const now = this.get(partition)
    if (now.streamTime !== null && now.streamTime >= time) return now.streamTime
    this.write(partition, { streamTime: time, closedTo: now.closedTo })
    this.movedAtOf().set(partition, clock.now())
    return time
  }

  /**
   * How far windows may be closed now: the stream time, or, once the partition has been idle for
   * `idleMs` on the app clock, the clock itself (never less than what was closed already).
   * Undefined when the partition has seen no event time and nothing to close.
   */
  horizon(partition: number, clock: Clock): number | undefined {
    const { streamTime, closedTo } = this.get(partition)
    let horizon = Math.max(streamTime ?? Number.NEGATIVE_INFINITY, closedTo ?? Number.NEGATIVE_INFINITY)
    const moved = this.movedAtOf()
    const now = clock.now()
    // A worker that has not seen the partition move yet starts its idle period now.
    if (!moved.has(partition)) moved.set(partition, now)
    if (now - moved.get(partition)! >= this.idleMs) horizon = Math.max(horizon, now)
    return Number.isFinite(horizon) ? horizon : undefined
  }

  /** The windows up to `horizon` are closed. */
  closed(partition: number, horizon: number): void {
    const now = this.get(partition)
    if (now.closedTo !== null && now.closedTo >= horizon) return
    this.write(partition, { streamTime: now.streamTime, closedTo: horizon })
  }

  /** The mark late events are judged by: the stream time or the close mark, whichever is later. */
  lateMark(partition: number): number {
    const { streamTime, closedTo } = this.get(partition)
    return Math.max(streamTime ?? Number.NEGATIVE_INFINITY, closedTo ?? Number.NEGATIVE_INFINITY)
  }

  private write(partition: number, value: PartitionTime): void {
    this.companion.state().write(partition, key(partition), value)
  }

  private movedAtOf(): Map<number, number> {
    const state = this.companion.state()
    let m = this.movedAt.get(state)
    if (!m) this.movedAt.set(state, (m = new Map()))
    return m
  }
}

function key(partition: number): string {
  return String(partition)
}
