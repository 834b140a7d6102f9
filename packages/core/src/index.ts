export { App } from './app/app.js'
export type { AppOptions, KafkaOptions, ProcessingGuarantee, StartOptions } from './app/app.js'
export { realClock, sleep } from './app/clock.js'
export type { Clock, TimerHandle } from './app/clock.js'
export { consoleLogger } from './app/logger.js'
export type { LogLevel, Logger } from './app/logger.js'
export type { CrontabOptions, TimerOptions } from './app/schedule.js'
export { HEADERS } from './app/worker.js'
export type { Worker, WorkerState } from './app/worker.js'

export { Agent } from './agents/agent.js'
export type { AgentFn, AgentOptions, AskOptions, ErrorAction, ErrorHandler, Sink } from './agents/agent.js'
export { currentEvent } from './agents/context.js'

export { Stream } from './streams/stream.js'
export type { GroupByOptions } from './streams/stream.js'
export { StreamEvent } from './streams/event.js'

export { Table } from './tables/table.js'
export type { PartitionOption, TableOptions } from './tables/table.js'
export { WindowedTable } from './tables/windowed.js'
export type { Window, WindowOptions } from './tables/windowed.js'

export { bytes, json, string } from './topics/codec.js'
export type { Codec, CodecLike } from './topics/codec.js'
export { Channel, Topic } from './topics/topic.js'
export type { Message, TopicOptions } from './topics/topic.js'

export { memoryStore } from './stores/memoryStore.js'
export type { Store, StoreWrite, TableStore, TableStoreSpec } from './stores/store.js'

export { Monitor } from './sensors/monitor.js'
export type { LatencyStats, MonitorOptions, MonitorSnapshot, PartitionSnapshot } from './sensors/monitor.js'
export type { Sensor, StreamEventInfo } from './sensors/sensor.js'
export { SensorSet } from './sensors/sensorSet.js'

export { MemoryBroker, memoryBroker } from './transport/memory/memoryBroker.js'
export { MemoryTransport } from './transport/memory/memoryTransport.js'
export { KafkaTransport } from './transport/kafka/kafkaTransport.js'
export { defaultPartition, murmur2 } from './transport/partitioner.js'
export { parseKafkaBrokers } from './transport/createTransport.js'
export type {
  CommitOffset,
  ConsumerHandlers,
  ConsumerOptions,
  Headers,
  OutgoingRecord,
  PartitionRange,
  ProducerOptions,
  RawRecord,
  RecordBatch,
  RecordMetadata,
  TopicPartition,
  TopicSpec,
  Transport,
  TransportAdmin,
  TransportConsumer,
  TransportProducer,
} from './transport/transport.js'

export type { PageHandler, WebOptions, WebRequest, WebResponse, WebRoutes } from './web/page.js'

export {
  ConfigurationError,
  DecodeError,
  EncodeError,
  ErrorCodes,
  MephistoError,
  NoEventContextError,
  NotReadyError,
  BrokerError,
} from './errors.js'
export type { ErrorCode } from './errors.js'
