/**
 * "Did you mean ...?" for a mistyped command, option, topic or table: the closest known name by
 * edit distance, if one is close enough. It does not decide what is known (the caller does).
 */

/**
 * The name among `known` that `typed` most likely meant: the nearest by edit distance (a
 * swap of two neighbouring letters counts as one edit), within a third of its length (at least
 * one edit), or else the only one that starts with it. Undefined when nothing is close.
 */
export function closest(typed: string, known: Iterable<string>): string | undefined {
  const word = typed.toLowerCase()
  const limit = Math.max(1, Math.floor(word.length / 3))
  let best: string | undefined
  let bestDistance = Number.POSITIVE_INFINITY
  const prefixed: string[] = []
  for (const name of new Set(known)) {
    if (name === typed) continue
    const d = editDistance(word, name.toLowerCase())
    if (d < bestDistance) {
      best = name
      bestDistance = d
    }
    if (word.length >= 2 && name.toLowerCase().startsWith(word)) prefixed.push(name)
  }
  if (best !== undefined && bestDistance <= limit) return best
  return prefixed.length === 1 ? prefixed[0] : undefined
}

/** `; did you mean <quoted>?`, or nothing when no name is close. */
export function didYouMean(
  typed: string,
  known: Iterable<string>,
  quote: (name: string) => string = (name) => JSON.stringify(name),
): string {
  const match = closest(typed, known)
  return match === undefined ? '' : `; did you mean ${quote(match)}?`
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1
  const cols = b.length + 1
  const d: number[][] = Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  )
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1)
      d[i]![j] = v
    }
  }
  return d[a.length]![b.length]!
}
