import { readFileSync } from 'node:fs'
import type { Sensor } from '@mephisto/core'

/** One sample of the exposition text. */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** Parses the Prometheus text format: `# TYPE` lines and samples. */
export function parseExposition(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>()
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '') continue
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type) {
      types.set(type[1]!, type[2]!)
      continue
    }
    if (line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m) throw new Error(`not an exposition line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!
    samples.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return { types, samples }
}

/** The value of the one sample with this name and these labels (undefined when absent). */
export function value(
  samples: Sample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  )
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} samples`)
  return found[0]?.value
}

/** The metric names of a README's metrics table (`| \`name\` | type | labels | meaning |`). */
export function documentedMetrics(readmeUrl: URL): Map<string, { type: string; labels: string[] }> {
  const text = readFileSync(readmeUrl, 'utf8')
  const section = text.slice(text.indexOf('## Metrics'))
  const rows = new Map<string, { type: string; labels: string[] }>()
  for (const line of section.split('\n')) {
    const m = /^\|\s*`([^`]+)`\s*\|\s*(\w+)\s*\|([^|]*)\|/.exec(line)
    if (!m) continue
    const labels = m[3]!
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
    rows.set(m[1]!, { type: m[2]!, labels })
  }
  return rows
}

/** Calls every sensor hook once with plausible arguments, as a busy worker would over time. */
export function exerciseEveryHook(sensor: Required<Sensor>): void {
  const tp = { topic: 'orders', partition: 0 }
  const event = { stream: 'process', topic: 'orders', partition: 0, offset: 0 }
  sensor.onMessageIn(tp, 0, 10)
  sensor.onStreamEventOut(event, sensor.onStreamEventIn(event))
  sensor.onMessageOut(tp, 0)
  sensor.onTableGet('totals', 'k')
  sensor.onTableSet('totals', 'k', 1)
  sensor.onTableDelete('totals', 'k')
  sensor.onLateEvent('totals')
  sensor.onCommitCompleted(sensor.onCommitInitiated(), [{ ...tp, offset: 1 }])
  sensor.onSendCompleted(sensor.onSendInitiated('out', 5), 'out')
  sensor.onSendError(sensor.onSendInitiated('out', 5), 'out', new Error('broker down'))
  sensor.onAssignmentCompleted(sensor.onAssignmentStart([tp]), [tp])
  sensor.onAssignmentError(sensor.onAssignmentStart([tp]), new Error('no'))
  sensor.onRebalanceEnd(sensor.onRebalanceStart([tp]))
  sensor.onWebRequest('GET', '/stats', 200, 1.5)
  sensor.onDlq({ ...tp, offset: 0 }, 'orders-dlq', 'DECODE')
  sensor.onSkip('process', new Error('skip me'))
  sensor.onRecoveryProgress('totals', 0, 5, 10)
  sensor.onOffsets(tp, { read: 0, committed: 1, end: 3 })
  sensor.onWorkerRestart(new Error('broker out of reach'))
  sensor.onWorkerStarted({ agents: () => [{ agent: 'process', oldestEventAgeMs: 1500, queued: 2 }] })
}
