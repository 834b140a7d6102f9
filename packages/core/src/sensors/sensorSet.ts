import type { TopicPartition } from '../transport/transport.js'
import type { Sensor, StreamEventInfo } from './sensor.js'

/** The name of one {@link Sensor} hook. */
export type SensorHook = keyof Sensor

declare const sensorStatesBrand: unique symbol

/**
 * What a {@link SensorSet} `...Initiated`/`...Start` hook returns: one state per sensor. Opaque: hand
 * it back unchanged to the matching `...Completed`/`...End`/`...Error` hook of the same set.
 */
export type SensorStates = readonly unknown[] & { readonly [sensorStatesBrand]: true }

/** Called whenever a sensor throws; the runtime carries on either way. */
export type SensorErrorHandler = (error: unknown, sensor: Sensor, hook: SensorHook) => void

export interface SensorSetOptions {
  /** Sensors to start with. */
  sensors?: Iterable<Sensor>
  /**
   * Called each time a sensor throws. Default: `console.warn` once per sensor and hook, so a sensor
   * that fails on every message cannot flood the log.
   */
  onSensorError?: SensorErrorHandler
}

/**
 * The hooks that open a measurement, with the hooks that close it. A sensor that implements only a
 * closing hook must still get it, so it is listed under the opening hook too (with no state).
 */
const PAIRS: Partial<Record<SensorHook, readonly SensorHook[]>> = {
  onStreamEventIn: ['onStreamEventOut'],
  onCommitInitiated: ['onCommitCompleted'],
  onSendInitiated: ['onSendCompleted', 'onSendError'],
  onAssignmentStart: ['onAssignmentCompleted', 'onAssignmentError'],
  onRebalanceStart: ['onRebalanceEnd'],
}

// Shared so that a paired hook with no sensors allocates nothing.
const NO_STATES = Object.freeze([]) as unknown as SensorStates

type HookLists = { readonly [K in SensorHook]: readonly Sensor[] }

/**
 * One list per hook. Written as a literal, not built in a loop: V8 turns an object that gains many
 * properties through computed keys into a slow dictionary, and this object is read on every hook call.
 * The return type makes a hook added to `Sensor` but missing here a compile error.
 */
function emptyLists(): Record<SensorHook, Sensor[]> {
  return {
    onMessageIn: [],
    onStreamEventIn: [],
    onStreamEventOut: [],
    onMessageOut: [],
    onTableGet: [],
    onTableSet: [],
    onTableDelete: [],
    onCommitInitiated: [],
    onCommitCompleted: [],
    onSendInitiated: [],
    onSendCompleted: [],
    onSendError: [],
    onAssignmentStart: [],
    onAssignmentCompleted: [],
    onAssignmentError: [],
    onRebalanceStart: [],
    onRebalanceEnd: [],
    onWebRequest: [],
    onDlq: [],
    onSkip: [],
    onRecoveryProgress: [],
    onOffsets: [],
    onLateEvent: [],
    onWorkerRestart: [],
  }
}
const HOOK_NAMES = Object.keys(emptyLists()) as SensorHook[]

function implementsHook(sensor: Sensor, hook: SensorHook): boolean {
  return typeof sensor[hook] === 'function'
}

/**
 * The app's sensors, and a {@link Sensor} that fans every hook out to them. The runtime calls the set's
 * hooks; the set calls each sensor that implements that hook, in the order the sensors were added.
 * A sensor that throws is reported to `onSensorError` and skipped: it never breaks processing.
 *
 * Hooks run on the hot path, so the set keeps, per hook, the list of sensors implementing it (rebuilt
 * on {@link add}/{@link remove}): a hook no sensor implements costs one property read and an empty loop.
 * A sensor's hooks are therefore looked up when it is added; add it again after changing them.
 *
 * Paired hooks (`onStreamEventIn`/`onStreamEventOut`, `onCommitInitiated`/`onCommitCompleted`, ...):
 * the opening hook returns {@link SensorStates}, which the closing hook takes back and splits out to
 * each sensor. The states remember their sensors, so a sensor removed in between still gets its
 * closing call and its in-flight counts stay balanced.
 */
export class SensorSet implements Required<Sensor> {
  private readonly sensors = new Set<Sensor>()
  private lists: HookLists = emptyLists()
  private readonly onSensorError: SensorErrorHandler
  private readonly warned = new WeakMap<Sensor, Set<SensorHook>>()

  constructor(options: SensorSetOptions = {}) {
    this.onSensorError =
      options.onSensorError ?? ((error, sensor, hook) => this.warnOnce(error, sensor, hook))
    for (const sensor of options.sensors ?? []) this.sensors.add(sensor)
    this.rebuild()
  }

  /** Adds a sensor. Adding one already present keeps its place and re-reads which hooks it has. */
  add(sensor: Sensor): this {
    this.sensors.add(sensor)
    this.rebuild()
    return this
  }

  /** Removes a sensor; returns whether it was present. */
  remove(sensor: Sensor): boolean {
    const removed = this.sensors.delete(sensor)
    if (removed) this.rebuild()
    return removed
  }

  /** Whether the sensor is in the set. */
  has(sensor: Sensor): boolean {
    return this.sensors.has(sensor)
  }

  /** The number of sensors. */
  get size(): number {
    return this.sensors.size
  }

  [Symbol.iterator](): IterableIterator<Sensor> {
    return this.sensors.values()
  }

  private rebuild(): void {
    const lists = emptyLists()
    for (const sensor of this.sensors) {
      for (const hook of HOOK_NAMES) {
        const closers = PAIRS[hook]
        if (implementsHook(sensor, hook) || closers?.some((closer) => implementsHook(sensor, closer))) {
          lists[hook].push(sensor)
        }
      }
    }
    // Swapped, never mutated: a fan-out loop in progress keeps iterating the list it started with.
    this.lists = lists
  }

  private failed(error: unknown, sensor: Sensor, hook: SensorHook): void {
    try {
      this.onSensorError(error, sensor, hook)
    } catch {
      // The error handler is as untrusted as the sensor: a hook must never throw into the runtime.
    }
  }

  private warnOnce(error: unknown, sensor: Sensor, hook: SensorHook): void {
    let hooks = this.warned.get(sensor)
    if (hooks === undefined) this.warned.set(sensor, (hooks = new Set()))
    if (hooks.has(hook)) return
    hooks.add(hook)
    const name =
      sensor.constructor?.name && sensor.constructor !== Object ? sensor.constructor.name : 'sensor'
    console.warn(
      `[mephisto] ${name}.${hook} threw; ignoring it (further errors from it are not logged):`,
      error,
    )
  }

  onMessageIn(tp: TopicPartition, offset: number, bytes: number): void {
    for (const sensor of this.lists.onMessageIn) {
      try {
        sensor.onMessageIn?.(tp, offset, bytes)
      } catch (error) {
        this.failed(error, sensor, 'onMessageIn')
      }
    }
  }

  onStreamEventIn(event: StreamEventInfo): SensorStates {
    const sensors = this.lists.onStreamEventIn
    if (sensors.length === 0) return NO_STATES
    // Flat [sensor, state, sensor, state, ...]: one allocation per event, whatever the sensor count.
    const states: unknown[] = []
    for (const sensor of sensors) {
      let state: unknown
      try {
        state = sensor.onStreamEventIn?.(event)
      } catch (error) {
        this.failed(error, sensor, 'onStreamEventIn')
      }
      states.push(sensor, state)
    }
    return states as unknown as SensorStates
  }

  onStreamEventOut(event: StreamEventInfo, states: SensorStates): void {
    for (let i = 0; i < states.length; i += 2) {
      const sensor = states[i] as Sensor
      try {
        sensor.onStreamEventOut?.(event, states[i + 1])
      } catch (error) {
        this.failed(error, sensor, 'onStreamEventOut')
      }
    }
  }

  onMessageOut(tp: TopicPartition, offset: number): void {
    for (const sensor of this.lists.onMessageOut) {
      try {
        sensor.onMessageOut?.(tp, offset)
      } catch (error) {
        this.failed(error, sensor, 'onMessageOut')
      }
    }
  }

  onTableGet(table: string, key: unknown): void {
    for (const sensor of this.lists.onTableGet) {
      try {
        sensor.onTableGet?.(table, key)
      } catch (error) {
        this.failed(error, sensor, 'onTableGet')
      }
    }
  }

  onTableSet(table: string, key: unknown, value: unknown): void {
    for (const sensor of this.lists.onTableSet) {
      try {
        sensor.onTableSet?.(table, key, value)
      } catch (error) {
        this.failed(error, sensor, 'onTableSet')
      }
    }
  }

  onTableDelete(table: string, key: unknown): void {
    for (const sensor of this.lists.onTableDelete) {
      try {
        sensor.onTableDelete?.(table, key)
      } catch (error) {
        this.failed(error, sensor, 'onTableDelete')
      }
    }
  }

  onCommitInitiated(): SensorStates {
    const sensors = this.lists.onCommitInitiated
    if (sensors.length === 0) return NO_STATES
    const states: unknown[] = []
    for (const sensor of sensors) {
      let state: unknown
      try {
        state = sensor.onCommitInitiated?.()
      } catch (error) {
        this.failed(error, sensor, 'onCommitInitiated')
      }
      states.push(sensor, state)
    }
    return states as unknown as SensorStates
  }

  onCommitCompleted(states: SensorStates, offsets: readonly (TopicPartition & { offset: number })[]): void {
    for (let i = 0; i < states.length; i += 2) {
      const sensor = states[i] as Sensor
      try {
        sensor.onCommitCompleted?.(states[i + 1], offsets)
      } catch (error) {
        this.failed(error, sensor, 'onCommitCompleted')
      }
    }
  }

  onSendInitiated(topic: string, bytes: number): SensorStates {
    const sensors = this.lists.onSendInitiated
    if (sensors.length === 0) return NO_STATES
    const states: unknown[] = []
    for (const sensor of sensors) {
      let state: unknown
      try {
        state = sensor.onSendInitiated?.(topic, bytes)
      } catch (error) {
        this.failed(error, sensor, 'onSendInitiated')
      }
      states.push(sensor, state)
    }
    return states as unknown as SensorStates
  }

  onSendCompleted(states: SensorStates, topic: string): void {
    for (let i = 0; i < states.length; i += 2) {
      const sensor = states[i] as Sensor
      try {
        sensor.onSendCompleted?.(states[i + 1], topic)
      } catch (error) {
        this.failed(error, sensor, 'onSendCompleted')
      }
    }
  }

  onSendError(states: SensorStates, topic: string, error: unknown): void {
    for (let i = 0; i < states.length; i += 2) {
      const sensor = states[i] as Sensor
      try {
        sensor.onSendError?.(states[i + 1], topic, error)
      } catch (thrown) {
        this.failed(thrown, sensor, 'onSendError')
      }
    }
  }

  onAssignmentStart(partitions: readonly TopicPartition[]): SensorStates {
    const sensors = this.lists.onAssignmentStart
    if (sensors.length === 0) return NO_STATES
    const states: unknown[] = []
    for (const sensor of sensors) {
      let state: unknown
      try {
        state = sensor.onAssignmentStart?.(partitions)
      } catch (error) {
        this.failed(error, sensor, 'onAssignmentStart')
      }
      states.push(sensor, state)
    }
    return states as unknown as SensorStates
  }

  onAssignmentCompleted(states: SensorStates, partitions: readonly TopicPartition[]): void {
    for (let i = 0; i < states.length; i += 2) {
      const sensor = states[i] as Sensor
      try {
        sensor.onAssignmentCompleted?.(states[i + 1], partitions)
      } catch (error) {
        this.failed(error, sensor, 'onAssignmentCompleted')
      }
    }
  }

  onAssignmentError(states: SensorStates, error: unknown): void {
    for (let i = 0; i < states.length; i += 2) {
      const sensor = states[i] as Sensor
      try {
        sensor.onAssignmentError?.(states[i + 1], error)
      } catch (thrown) {
        this.failed(thrown, sensor, 'onAssignmentError')
      }
    }
  }

  onRebalanceStart(revoked: readonly TopicPartition[]): SensorStates {
    const sensors = this.lists.onRebalanceStart
    if (sensors.length === 0) return NO_STATES
    const states: unknown[] = []
    for (const sensor of sensors) {
      let state: unknown
      try {
        state = sensor.onRebalanceStart?.(revoked)
      } catch (error) {
        this.failed(error, sensor, 'onRebalanceStart')
      }
      states.push(sensor, state)
    }
    return states as unknown as SensorStates
  }

  onRebalanceEnd(states: SensorStates): void {
    for (let i = 0; i < states.length; i += 2) {
      const sensor = states[i] as Sensor
      try {
        sensor.onRebalanceEnd?.(states[i + 1])
      } catch (error) {
        this.failed(error, sensor, 'onRebalanceEnd')
      }
    }
  }

  onWebRequest(method: string, path: string, status: number, ms: number): void {
    for (const sensor of this.lists.onWebRequest) {
      try {
        sensor.onWebRequest?.(method, path, status, ms)
      } catch (error) {
        this.failed(error, sensor, 'onWebRequest')
      }
    }
  }

  onDlq(source: TopicPartition & { offset: number }, dlqTopic: string, reason: string): void {
    for (const sensor of this.lists.onDlq) {
      try {
        sensor.onDlq?.(source, dlqTopic, reason)
      } catch (error) {
        this.failed(error, sensor, 'onDlq')
      }
    }
  }

  onSkip(stream: string, error: unknown): void {
    for (const sensor of this.lists.onSkip) {
      try {
        sensor.onSkip?.(stream, error)
      } catch (thrown) {
        this.failed(thrown, sensor, 'onSkip')
      }
    }
  }

  onRecoveryProgress(table: string, partition: number, done: number, total: number): void {
    for (const sensor of this.lists.onRecoveryProgress) {
      try {
        sensor.onRecoveryProgress?.(table, partition, done, total)
      } catch (error) {
        this.failed(error, sensor, 'onRecoveryProgress')
      }
    }
  }

  onOffsets(tp: TopicPartition, offsets: { read?: number; committed?: number; end?: number }): void {
    for (const sensor of this.lists.onOffsets) {
      try {
        sensor.onOffsets?.(tp, offsets)
      } catch (error) {
        this.failed(error, sensor, 'onOffsets')
      }
    }
  }

  onLateEvent(table: string): void {
    for (const sensor of this.lists.onLateEvent) {
      try {
        sensor.onLateEvent?.(table)
      } catch (error) {
        this.failed(error, sensor, 'onLateEvent')
      }
    }
  }

  onWorkerRestart(reason: unknown): void {
    for (const sensor of this.lists.onWorkerRestart) {
      try {
        sensor.onWorkerRestart?.(reason)
      } catch (error) {
        this.failed(error, sensor, 'onWorkerRestart')
      }
    }
  }
}
