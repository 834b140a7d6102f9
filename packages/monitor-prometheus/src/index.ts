export type { PrometheusMonitorOptions } from './prometheusMonitor.js'
export { DEFAULT_BUCKETS, PrometheusMonitor } from './prometheusMonitor.js'
