import { readFileSync } from 'node:fs'
import type { Sensor } from '@mephisto/core'
import type { Attributes } from '@opentelemetry/api'
import type { MetricData } from '@opentelemetry/sdk-metrics'
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics'

/** A meter provider whose metrics are read back on demand through the SDK's in-memory exporter. */
export function meterSdk() {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  // Exports only when asked (forceFlush): the interval is longer than any test.
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 })
  const meterProvider = new MeterProvider({ readers: [reader] })
  /** Collects and exports now; the metrics by name. */
  const collect = async (): Promise<Map<string, MetricData>> => {
    exporter.reset()
    await reader.forceFlush()
    const out = new Map<string, MetricData>()
    for (const rm of exporter.getMetrics())
      for (const sm of rm.scopeMetrics) for (const m of sm.metrics) out.set(m.descriptor.name, m)
    return out
  }
  return { meterProvider, collect, shutdown: () => meterProvider.shutdown() }
}

/** The kind of instrument an exported metric came from, in the README's words. */
export function kindOf(m: MetricData): string {
  if (m.dataPointType === DataPointType.HISTOGRAM) return 'histogram'
  if (m.dataPointType === DataPointType.GAUGE) return 'gauge'
  if (m.dataPointType === DataPointType.SUM) return m.isMonotonic ? 'counter' : 'updowncounter'
  return 'other'
}

/**
 * The value of the one data point of `metric` whose attributes include `attributes` (a
 * histogram's count); undefined when none.
 */
export function value(
  metrics: Map<string, MetricData>,
  name: string,
  attributes: Attributes = {},
): number | undefined {
  const m = metrics.get(name)
  if (!m) return undefined
  const points = (m.dataPoints as { attributes: Attributes; value: unknown }[]).filter((p) =>
    Object.entries(attributes).every(([k, v]) => p.attributes[k] === v),
  )
  if (points.length > 1)
    throw new Error(`${name} ${JSON.stringify(attributes)} matches ${points.length} points`)
  const v = points[0]?.value
  return typeof v === 'number' ? v : (v as { count: number } | undefined)?.count
}

/** A row of a README metrics table: `| \`name\` | kind | unit | attributes | \`prometheus name\` | meaning |`. */
export interface DocumentedMetric {
  kind: string
  unit: string
  attributes: string[]
  prometheus: string
}

export function documentedMetrics(readmeUrl: URL): Map<string, DocumentedMetric> {
  const text = readFileSync(readmeUrl, 'utf8')
  const section = text.slice(text.indexOf('## Metrics'))
  const rows = new Map<string, DocumentedMetric>()
  for (const line of section.split('\n')) {
    const m = /^\|\s*`([^`]+)`\s*\|\s*(\w+)\s*\|\s*`([^`]+)`\s*\|([^|]*)\|\s*`([^`]+)`\s*\|/.exec(line)
    if (!m) continue
    const attributes = m[4]!
      .split(',')
      .map((s) => s.trim().replace(/`/g, ''))
      .filter(Boolean)
    rows.set(m[1]!, { kind: m[2]!, unit: m[3]!, attributes, prometheus: m[5]! })
  }
  return rows
}

/** The metric names of the Prometheus monitor's README table (`| \`name\` | type | labels | meaning |`). */
export function prometheusMetrics(readmeUrl: URL): string[] {
  const text = readFileSync(readmeUrl, 'utf8')
  const section = text.slice(text.indexOf('## Metrics'))
  return [...section.matchAll(/^\|\s*`(mephisto_[a-z_]+)`\s*\|/gm)].map((m) => m[1]!)
}

/** Calls every sensor hook once with plausible arguments, as a busy worker would over time. */
export function exerciseEveryHook(sensor: Required<Sensor>): void {
  const tp = { topic: 'orders', partition: 0 }
  const event = { stream: 'process', topic: 'orders', partition: 0, offset: 0, headers: {} }
  sensor.onMessageIn(tp, 0, 10)
  sensor.onStreamEventOut(event, sensor.onStreamEventIn(event))
  sensor.onMessageOut(tp, 0)
  sensor.onTableGet('totals', 'k')
  sensor.onTableSet('totals', 'k', 1)
  sensor.onTableDelete('totals', 'k')
  sensor.onLateEvent('totals')
  sensor.onCommitCompleted(sensor.onCommitInitiated(), [{ ...tp, offset: 1 }])
  sensor.onSendCompleted(sensor.onSendInitiated('out', 5, {}), 'out')
  sensor.onSendError(sensor.onSendInitiated('out', 5, {}), 'out', new Error('broker down'))
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
