// Benchmarks, as ratios taken in one run on one machine. Prints a table and writes JSON to
// bench-results/. Never a timed test: run it by hand or in CI for the figures.
//   pnpm bench [--events 200000] [--only memory]
import { mkdirSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { memoryBench } from './memory.js'

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: { events: { type: 'string', default: '200000' }, only: { type: 'string' } },
})
const events = Number(values.events)
const results: Record<string, unknown> = { node: process.version, date: new Date().toISOString() }
const rows: string[][] = []

if (!values.only || values.only === 'memory') {
  await memoryBench(Math.min(events, 20_000)) // warm-up: JIT both paths before measuring
  const r = await memoryBench(events)
  results.memory = r
  rows.push(['hit counter, memory broker', `${Math.round(r.mephistoPerSec)}/s`, `${Math.round(r.plainPerSec)}/s (plain loop)`, `${r.ratio.toFixed(2)}x`, r.countsMatch ? 'yes' : 'NO'])
}

const header = ['benchmark', 'mephisto', 'baseline', 'mephisto/baseline', 'correct']
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ')
process.stdout.write(`\nNode ${process.version}, ${events} events\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`)
for (const r of rows) process.stdout.write(`${line(r)}\n`)
mkdirSync('bench-results', { recursive: true })
const file = `bench-results/bench-${Date.now()}.json`
writeFileSync(file, JSON.stringify(results, null, 2))
process.stdout.write(`\nwrote ${file}\n`)
