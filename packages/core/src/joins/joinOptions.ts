/**
 * The options of a windowed stream-stream join (`app.join`), validated once where the join is
 * declared, and the shape of its results. How a join runs is in streamJoin.ts.
 */
import { ConfigurationError } from '../base/errors.js'

export type JoinType = 'inner' | 'left'

export interface StreamJoinOptions {
  /**
   * Names the join: its result topic is `<app>-<name>-join`, its tables `<name>-join-left`,
   * `<name>-join-right` and `<name>-join-time`, its agents `<name>-join-left` and `-right`. Keep
   * it stable across deploys: the buffered events live under it.
   */
  name: string
  /** Two events join when their keys are equal and their event times differ by at most this. */
  withinMs: number
  /**
   * `'inner'` (default): only pairs. `'left'`: also `{ left, right: null }` for each left event
   * that found no right event, once no right event can come for it any more.
   */
  type?: JoinType
  /**
   * How far behind its side's stream time (the largest event time of that topic in the
   * partition) an event may arrive and still join (default 0). A buffered event is dropped once
   * the other side's stream time passes its time + `withinMs` + `graceMs`.
   */
  graceMs?: number
}

/** What the result topic of a join holds, keyed by the join key. */
export interface JoinResult<L, R> {
  left: L
  /** null: a left join's left event that no right event joined within `withinMs`. */
  right: R | null
}

/** {@link StreamJoinOptions} with every default filled in. */
export interface JoinSettings {
  readonly name: string
  readonly withinMs: number
  readonly graceMs: number
  readonly type: JoinType
}

/** Validates the options of `app.join`, naming the option that is wrong. */
export function joinSettings(options: StreamJoinOptions): JoinSettings {
  const name = options?.name
  if (typeof name !== 'string' || !/^[a-zA-Z0-9._-]{1,100}$/.test(name)) {
    throw new ConfigurationError(
      `app.join: name must be 1 to 100 letters, digits, '.', '_' or '-' (it names the join's topic and tables), not ${JSON.stringify(name)}`,
    )
  }
  const within = options.withinMs
  if (!(Number.isFinite(within) && within >= 0)) {
    throw new ConfigurationError(`app.join(${name}): withinMs must be a number of ms >= 0, not ${within}`)
  }
  const grace = options.graceMs ?? 0
  if (!(Number.isFinite(grace) && grace >= 0)) {
    throw new ConfigurationError(`app.join(${name}): graceMs must be a number of ms >= 0, not ${grace}`)
  }
  const type = options.type ?? 'inner'
  if (type !== 'inner' && type !== 'left') {
    throw new ConfigurationError(`app.join(${name}): type must be 'inner' or 'left', not ${String(type)}`)
  }
  for (const option of Object.keys(options)) {
    if (!['name', 'withinMs', 'type', 'graceMs'].includes(option)) {
      throw new ConfigurationError(`app.join(${name}): unknown option ${option}`)
    }
  }
  return { name, withinMs: within, graceMs: grace, type }
}
