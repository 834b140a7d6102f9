export type { DatadogMonitorOptions, DogStatsdClient } from './datadogMonitor.js'
export { DatadogMonitor } from './datadogMonitor.js'
