/**
 * How a windowed table stores a key's windows: one storage key per key and window start, the
 * table's own storage key, a separator and the start. Encoding and decoding only.
 */

/** Separates the key from the window start inside a windowed table's storage key. */
const SEP = '\u0001'

/** The storage key of window `start` of the key stored as `sk`. */
export function windowKey(sk: string, start: number): string {
  return `${sk}${SEP}${start}`
}

/** The key's storage key and the window start of a windowed storage key; undefined for others. */
export function parseWindowKey(wk: string): { sk: string; start: number } | undefined {
  const i = wk.lastIndexOf(SEP)
  if (i < 0) return undefined
  const start = Number(wk.slice(i + 1))
  if (!Number.isFinite(start)) return undefined
  return { sk: wk.slice(0, i), start }
}

/** The prefix every window of the key stored as `sk` starts with. */
export function windowPrefix(sk: string): string {
  return sk + SEP
}
