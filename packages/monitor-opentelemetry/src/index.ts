export type { OpenTelemetryMonitorOptions } from './openTelemetryMonitor.js'
export { DEFAULT_BUCKETS, OpenTelemetryMonitor } from './openTelemetryMonitor.js'
export type { OpenTelemetryTracingOptions } from './openTelemetryTracing.js'
export { INSTRUMENTATION_SCOPE, OpenTelemetryTracing } from './openTelemetryTracing.js'
