import { readFileSync } from 'node:fs'
import type { Sensor } from '@mephisto/core'

/** One DogStatsD line: `name:value|type|@rate|#tag:v,tag:v`. */
export interface StatsdLine {
  name: string
  value: number
  type: string
  sampleRate: number
  tags: Record<string, string>
}

/** Parses DogStatsD datagram text (one metric per line). */
export function parseStatsd(text: string): StatsdLine[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((line) => {
      const [head = '', ...fields] = line.split('|')
      const colon = head.lastIndexOf(':')
      const parsed: StatsdLine = {
        name: head.slice(0, colon),
        value: Number(head.slice(colon + 1)),
        type: fields[0] ?? '',
        sampleRate: 1,
        tags: {},
      }
      for (const f of fields.slice(1)) {
        if (f.startsWith('@')) parsed.sampleRate = Number(f.slice(1))
        if (f.startsWith('#')) {
          for (const t of f.slice(1).split(',')) {
            const i = t.indexOf(':')
            parsed.tags[i < 0 ? t : t.slice(0, i)] = i < 0 ? '' : t.slice(i + 1)
          }
        }
      }
      return parsed
    })
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
