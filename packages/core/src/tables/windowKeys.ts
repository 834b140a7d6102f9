/**
 * How a windowed table stores a key's windows: one storage key per key and window, the table's
 * own storage key, a separator and the window's start (and, for a session, its end; for a sliding
 * window kept after it closed, a mark). Encoding and decoding only.
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

/** Separates a session's start from its end. */
const END = '\u0002'

/** Marks a window kept after it closed (a sliding window's aggregate, still needed to start new ones). */
const CLOSED = 'c'

/** The storage key of the session `[start, end)` of the key stored as `sk`: its bounds are in the key. */
export function sessionKey(sk: string, start: number, end: number): string {
  return `${sk}${SEP}${start}${END}${end}`
}

/** The key's storage key and the session bounds of a session's storage key; undefined for others. */
export function parseSessionKey(wk: string): { sk: string; start: number; end: number } | undefined {
  const i = wk.lastIndexOf(SEP)
  if (i < 0) return undefined
  const bounds = wk.slice(i + 1)
  const j = bounds.indexOf(END)
  if (j <= 0 || j === bounds.length - 1) return undefined
  const start = Number(bounds.slice(0, j))
  const end = Number(bounds.slice(j + 1))
  if (!Number.isFinite(start) || !Number.isFinite(end)) return undefined
  return { sk: wk.slice(0, i), start, end }
}

/** The storage key of window `start` of `sk` once it has closed (reported, kept for a while). */
export function closedWindowKey(sk: string, start: number): string {
  return `${sk}${SEP}${CLOSED}${start}`
}

/** The key's storage key and the window start of a closed window's storage key; undefined for others. */
export function parseClosedWindowKey(wk: string): { sk: string; start: number } | undefined {
  const i = wk.lastIndexOf(SEP)
  if (i < 0 || wk[i + 1] !== CLOSED || i + 2 >= wk.length) return undefined
  const start = Number(wk.slice(i + 2))
  if (!Number.isFinite(start)) return undefined
  return { sk: wk.slice(0, i), start }
}
