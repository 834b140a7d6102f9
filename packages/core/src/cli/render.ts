/**
 * Plain-text tables for the terminal, drawn with box characters like Faust's banner. No colour:
 * the output is also read by scripts and tests, and piped into files.
 */

const NONE = '(none)'

/**
 * A table with a header row; no rows print `(none)` under the header, across the columns (the
 * first column may be narrower than the word). Every line is as wide as the top border.
 */
export function renderTable(
  title: string,
  headers: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  // A title longer than the columns widens the last one, so the top border can hold it; so
  // does (none) wider than all the columns.
  const inner = widths.reduce((a, w) => a + w + 3, -1)
  const needed = Math.max(title.length + 4, rows.length === 0 ? NONE.length + 2 : 0)
  if (needed > inner && widths.length > 0) widths[widths.length - 1]! += needed - inner
  const line = (l: string, m: string, r: string): string =>
    `${l}${widths.map((w) => '─'.repeat(w + 2)).join(m)}${r}`
  const row = (cells: readonly string[]): string =>
    `│${widths.map((w, i) => ` ${(cells[i] ?? '').padEnd(w)} `).join('│')}│`
  const top = line('┌', '┬', '┐')
  const titled = title ? `┌${`─ ${title} `.padEnd(top.length - 2, '─').slice(0, top.length - 2)}┐` : top
  const out = [titled, row(headers)]
  if (rows.length === 0) {
    // The columns end above it: a border without the column joins, then one cell as wide as all.
    out.push(line('├', '┴', '┤'), `│ ${NONE.padEnd(top.length - 4)} │`, `└${'─'.repeat(top.length - 2)}┘`)
    return out.join('\n')
  }
  out.push(line('├', '┼', '┤'))
  for (const r of rows) out.push(row(r))
  out.push(line('└', '┴', '┘'))
  return out.join('\n')
}

/** Two columns, keys on the left: the banner's head. */
export function renderBox(title: string, entries: readonly (readonly [string, string])[]): string {
  const kw = Math.max(...entries.map(([k]) => k.length), title.length + 1)
  const vw = Math.max(...entries.map(([, v]) => v.length), 20)
  const head = `┌${` ${title} `.padEnd(kw + 2, '─')}┬${'─'.repeat(vw + 2)}┐`
  const body = entries.map(([k, v]) => `│ ${k.padEnd(kw)} │ ${v.padEnd(vw)} │`)
  return [head, ...body, `└${'─'.repeat(kw + 2)}┴${'─'.repeat(vw + 2)}┘`].join('\n')
}
