/**
 * The events a stream-stream join holds per key and side, as its tables store them (JSON), and
 * the pure rules on them: order, which ones join an event, which ones have expired. Reading and
 * writing the tables is streamJoin.ts's job.
 */

/** One buffered event of one side of a join. */
export interface Buffered<V> {
  /** Event time: the record's timestamp (ms). */
  t: number
  /** Offset in its partition: orders events of one time, and recognises an event seen before. */
  o: number
  /** The event's value. */
  v: V
  /** 1 once a right event joined this left event (left joins only: it owes no miss). */
  m?: 1
}

/** `list` with `entry` in its place, by event time then offset. */
export function withEntry<V>(list: readonly Buffered<V>[], entry: Buffered<V>): Buffered<V>[] {
  const out = [...list]
  let i = out.length
  while (i > 0 && (out[i - 1]!.t > entry.t || (out[i - 1]!.t === entry.t && out[i - 1]!.o > entry.o))) i--
  out.splice(i, 0, entry)
  return out
}

/** The entries of `list` an event at `time` joins: event times at most `withinMs` apart. */
export function partnersOf<V>(list: readonly Buffered<V>[], time: number, withinMs: number): Buffered<V>[] {
  return list.filter((b) => Math.abs(b.t - time) <= withinMs)
}

/**
 * Splits `list` at stream time `streamTime`: an entry has expired once stream time has passed its
 * time + `horizonMs` (withinMs + graceMs), since no event that may still arrive can join it.
 */
export function splitExpired<V>(
  list: readonly Buffered<V>[],
  streamTime: number,
  horizonMs: number,
): { kept: Buffered<V>[]; expired: Buffered<V>[] } {
  const kept: Buffered<V>[] = []
  const expired: Buffered<V>[] = []
  for (const b of list) (b.t + horizonMs < streamTime ? expired : kept).push(b)
  return { kept, expired }
}

/** The earliest time an entry of `list` expires at (its time + horizon), or undefined for none. */
export function firstExpiry(list: readonly Buffered<unknown>[], horizonMs: number): number | undefined {
  let first: number | undefined
  for (const b of list) if (first === undefined || b.t < first) first = b.t
  return first === undefined ? undefined : first + horizonMs
}
