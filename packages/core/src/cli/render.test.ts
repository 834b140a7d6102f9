import { describe, expect, it } from 'vitest'
import { renderTable } from './render.js'

describe('renderTable', () => {
  it('draws (none) inside the border when there are no rows, however narrow the columns', () => {
    const lines = renderTable('', ['k', 'v'], []).split('\n')
    expect(lines).toEqual(['┌───┬────┐', '│ k │ v  │', '├───┴────┤', '│ (none) │', '└────────┘'])
  })

  it('keeps every line as wide as the top border, with a long title or none', () => {
    for (const title of ['', 'a title longer than the columns (0 keys)']) {
      for (const rows of [[], [['key-1', '42']]]) {
        const lines = renderTable(title, ['key', 'value'], rows).split('\n')
        for (const line of lines) expect(line.length, lines.join('\n')).toBe(lines[0]!.length)
      }
    }
  })
})
