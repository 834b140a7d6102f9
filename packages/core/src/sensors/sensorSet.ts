// The app's sensors: which are in the set, which hooks each implements, and what happens when one
// throws. The calls themselves are fanOut.ts's, built per hook from the hook list; this file writes
// no hook out by hand, so a hook added to Sensor needs no change here.
import { type FanOutHost, fanOutBase } from './fanOut.js'
import type { Sensor } from './sensor.js'
import { closersOf, HOOK_NAMES, type SensorHook } from './sensorHooks.js'

export type { SensorStates } from './fanOut.js'
export type { SensorHook } from './sensorHooks.js'

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

function implementsHook(sensor: Sensor, hook: SensorHook): boolean {
  return typeof sensor[hook] === 'function'
}

/**
 * Per hook, the sensors to call: those implementing the hook and, for a hook that opens a
 * measurement, those implementing only a closing hook (they must be in the states the opening hook
 * returns, with no state of their own). Made by `Object.fromEntries`, whose object V8 keeps in fast
 * mode; adding the keys one at a time can make it a dictionary, slower to read on every hook call
 * (a `for...of` loop adding the hooks' keys did, by `%HasFastProperties`).
 */
function listsOf(sensors: readonly Sensor[]): FanOutHost['lists'] {
  return Object.fromEntries(
    HOOK_NAMES.map((hook) => {
      const hooks = [hook, ...closersOf(hook)]
      return [hook, sensors.filter((sensor) => hooks.some((h) => implementsHook(sensor, h)))]
    }),
  ) as unknown as FanOutHost['lists']
}

/**
 * The app's sensors, and a {@link Sensor} that fans every hook out to them. The runtime calls the set's
 * hooks; the set calls each sensor that implements that hook, in the order the sensors were added.
 * A sensor that throws is reported to `onSensorError` and skipped: it never breaks processing.
 *
 * Hooks run on the hot path, so the set keeps, per hook, the list of sensors implementing it (rebuilt
 * on {@link add}/{@link remove}): a hook no sensor implements costs one property read and an empty loop.
 * Which hooks a sensor has is therefore read when it is added; add it again after changing them.
 *
 * Paired hooks (`onStreamEventIn`/`onStreamEventOut`, `onCommitInitiated`/`onCommitCompleted`, ...):
 * the opening hook returns {@link SensorStates}, which the closing hook takes back and splits out to
 * each sensor. The states remember their sensors, so a sensor removed in between still gets its
 * closing call and its in-flight counts stay balanced.
 */
export class SensorSet extends fanOutBase() implements Required<Sensor> {
  private readonly sensors = new Set<Sensor>()
  /** Per hook, the sensors to call. Read by the fan-out functions (fanOut.ts), hence not private. */
  protected lists: FanOutHost['lists'] = listsOf([])
  private readonly onSensorError: SensorErrorHandler
  private readonly warned = new WeakMap<Sensor, Set<SensorHook>>()

  constructor(options: SensorSetOptions = {}) {
    super()
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
    // Swapped, never mutated: a fan-out loop in progress keeps iterating the list it started with.
    this.lists = listsOf([...this.sensors])
  }

  /** Reports a sensor's error. Called by the fan-out functions (fanOut.ts), hence not private. */
  protected failed(error: unknown, sensor: Sensor, hook: SensorHook): void {
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
}
