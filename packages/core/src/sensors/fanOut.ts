// Builds, from the hook list, one function per Sensor hook that calls that hook on every sensor of
// a list, each call in its own try/catch, and pairs opening and closing hooks' states. It does not
// decide which sensors are in the lists, nor what a sensor's error leads to: its host does both.
import type { Sensor } from './sensor.js'
import {
  type ClosingHook,
  closersOf,
  HOOK_NAMES,
  hookShape,
  type OpeningHook,
  type SensorHook,
  type StatePosition,
} from './sensorHooks.js'

declare const sensorStatesBrand: unique symbol

/**
 * What a `SensorSet` `...Initiated`/`...Start` hook returns: one state per sensor. Opaque: hand
 * it back unchanged to the matching `...Completed`/`...End`/`...Error` hook of the same set.
 */
export type SensorStates = readonly unknown[] & { readonly [sensorStatesBrand]: true }

type Params<K extends SensorHook> = Parameters<NonNullable<Sensor[K]>>

/** The parameters `P` with the one at position `At` (a sensor's own state) replaced by every sensor's. */
type WithStates<P extends readonly unknown[], At extends number> = {
  [I in keyof P]: I extends `${At}` ? SensorStates : P[I]
}

/**
 * Every hook as a set of sensors takes it: an opening hook returns {@link SensorStates}, its closing
 * hooks take them back where a sensor takes its own state; every other hook is the sensor's own.
 */
export type SensorFanOut = {
  [K in SensorHook]-?: K extends OpeningHook
    ? (...args: Params<K>) => SensorStates
    : K extends ClosingHook
      ? (...args: WithStates<Params<K>, StatePosition<K>>) => void
      : (...args: Params<K>) => void
}

/**
 * What the fan-out functions read from `this`: per hook, the sensors to call, in order (a list is
 * replaced, never changed, so a call in progress is unaffected); and where a sensor's error goes.
 */
export interface FanOutHost {
  readonly lists: { readonly [K in SensorHook]: readonly Sensor[] }
  failed(error: unknown, sensor: Sensor, hook: SensorHook): void
}

// Shared so that an opening hook with no sensors allocates nothing.
const NO_STATES = Object.freeze([]) as unknown as SensorStates

/**
 * The source of one hook's fan-out, written out as its own function. Generated rather than made as
 * closures of one generic function: closures made at one place share V8's type feedback, so every
 * hook's calls looked megamorphic and nothing was inlined; measured, a SensorSet of closures took
 * twice as long per event's hooks as hand-written methods. Generated source reads only the constant
 * hook list, never input.
 */
function fanOutSource(hook: SensorHook): string {
  const { params, stateAt } = hookShape(hook)
  const args = Array.from({ length: params }, (_, i) => `a${i}`)
  const fail = `this.failed(error, sensor, ${JSON.stringify(hook)})`
  if (stateAt !== undefined) {
    // Closing: the states remember their sensors, so a sensor removed since the opening hook still
    // gets its closing call, and a sensor added since does not.
    const call = args.map((arg, i) => (i === stateAt ? 'states[i + 1]' : arg))
    args[stateAt] = 'states'
    return `return function ${hook}(${args.join(', ')}) {
  for (let i = 0; i < states.length; i += 2) {
    const sensor = states[i]
    try { sensor.${hook}?.(${call.join(', ')}) } catch (error) { ${fail} }
  }
}`
  }
  if (closersOf(hook).length > 0) {
    // Opening: a flat [sensor, state, sensor, state, ...], one allocation per call whatever the count.
    return `return function ${hook}(${args.join(', ')}) {
  const sensors = this.lists.${hook}
  if (sensors.length === 0) return NO_STATES
  const states = []
  for (const sensor of sensors) {
    let state
    try { state = sensor.${hook}?.(${args.join(', ')}) } catch (error) { ${fail} }
    states.push(sensor, state)
  }
  return states
}`
  }
  return `return function ${hook}(${args.join(', ')}) {
  for (const sensor of this.lists.${hook}) {
    try { sensor.${hook}?.(${args.join(', ')}) } catch (error) { ${fail} }
  }
}`
}

/**
 * A base class whose prototype has every hook's fan-out, for a class with the members of
 * {@link FanOutHost} (protected will do) to extend. Which sensors are called is the host's lists; a
 * sensor's hook is read at each call, so a spy installed on it later is the one called.
 */
export function fanOutBase(): new () => SensorFanOut {
  class FanOut {}
  for (const hook of HOOK_NAMES) {
    const fanOut: unknown = new Function('NO_STATES', fanOutSource(hook))(NO_STATES)
    Object.defineProperty(FanOut.prototype, hook, { value: fanOut, writable: true, configurable: true })
  }
  return FanOut as unknown as new () => SensorFanOut
}
