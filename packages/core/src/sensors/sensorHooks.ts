// The Sensor interface's hooks as data: each hook's parameter count, and which hooks close a
// measurement another hook opened (with the position of the state they take back). It calls no
// sensor and holds none: SensorSet builds its fan-out from this list.
import type { Sensor } from './sensor.js'

/** The name of one {@link Sensor} hook. */
export type SensorHook = keyof Sensor

type Params<K extends SensorHook> = Parameters<NonNullable<Sensor[K]>>

/** How a hook is called: its parameter count and, for a closing hook, what it closes. */
type HookShape<K extends SensorHook> = {
  /** Checked against the `Sensor` interface: a hook that gains a parameter fails to compile here. */
  params: Params<K>['length']
  /** The hook whose returned state this one takes back. */
  closes?: SensorHook
  /** Where that state is among the parameters. */
  stateAt?: number
}

/**
 * Every {@link Sensor} hook, in the order the runtime meets them. The type makes a hook added to
 * `Sensor` and missing here (or listed here with the wrong parameter count) a compile error.
 */
export const SENSOR_HOOKS = {
  onMessageIn: { params: 3 },
  onStreamEventIn: { params: 1 },
  onStreamEventOut: { params: 2, closes: 'onStreamEventIn', stateAt: 1 },
  onMessageOut: { params: 2 },
  onTableGet: { params: 2 },
  onTableSet: { params: 3 },
  onTableDelete: { params: 2 },
  onCommitInitiated: { params: 0 },
  onCommitCompleted: { params: 2, closes: 'onCommitInitiated', stateAt: 0 },
  onSendInitiated: { params: 3 },
  onSendCompleted: { params: 2, closes: 'onSendInitiated', stateAt: 0 },
  onSendError: { params: 3, closes: 'onSendInitiated', stateAt: 0 },
  onAssignmentStart: { params: 1 },
  onAssignmentCompleted: { params: 2, closes: 'onAssignmentStart', stateAt: 0 },
  onAssignmentError: { params: 2, closes: 'onAssignmentStart', stateAt: 0 },
  onRebalanceStart: { params: 1 },
  onRebalanceEnd: { params: 1, closes: 'onRebalanceStart', stateAt: 0 },
  onWebRequest: { params: 4 },
  onDlq: { params: 3 },
  onSkip: { params: 2 },
  onRecoveryProgress: { params: 4 },
  onOffsets: { params: 2 },
  onLateEvent: { params: 1 },
  onWorkerRestart: { params: 1 },
  onWorkerStarted: { params: 1 },
} as const satisfies { readonly [K in SensorHook]-?: HookShape<K> }

type Hooks = typeof SENSOR_HOOKS

/** A hook that closes a measurement: it takes back the state its opening hook returned. */
export type ClosingHook = {
  [K in SensorHook]: Hooks[K] extends { closes: SensorHook } ? K : never
}[SensorHook]

/** A hook that opens a measurement: its return value is handed to the closing hook. */
export type OpeningHook = { [K in ClosingHook]: Hooks[K]['closes'] }[ClosingHook]

/** Where a closing hook takes its state. */
export type StatePosition<K extends ClosingHook> = Hooks[K]['stateAt']

/** Every hook name, in {@link SENSOR_HOOKS} order. */
export const HOOK_NAMES = Object.keys(SENSOR_HOOKS) as SensorHook[]

/** The shape of one hook, read without the literal types. */
export function hookShape(hook: SensorHook): { params: number; closes?: SensorHook; stateAt?: number } {
  return SENSOR_HOOKS[hook]
}

/** The hooks that close what `hook` opens (none for a hook that opens nothing). */
export function closersOf(hook: SensorHook): SensorHook[] {
  return HOOK_NAMES.filter((closer) => hookShape(closer).closes === hook)
}
