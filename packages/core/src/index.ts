export type { AgentFn, AgentOptions, AskOptions, ErrorAction, ErrorHandler, Sink } from './agents/agent.js'
export { Agent } from './agents/agent.js'
export type { AppOptions, KafkaOptions, ProcessingGuarantee, StartOptions } from './app/app.js'
export { App } from './app/app.js'
export type { Clock, TimerHandle } from './base/clock.js'
export { realClock, sleep } from './base/clock.js'
export type { ErrorCode, MephistoErrorOptions } from './base/errors.js'
export {
  BrokerError,
  ConfigurationError,
  DecodeError,
  EncodeError,
  ErrorCodes,
  isFenced,
  MephistoError,
  NoEventContextError,
  NotReadyError,
  TransactionError,
} from './base/errors.js'
export { HEADERS } from './base/headers.js'
export type { Logger, LogLevel } from './base/logger.js'
export { consoleLogger } from './base/logger.js'
export type { CrontabOptions, TimerOptions } from './base/schedule.js'
export type { MonitorOptions } from './sensors/monitor.js'
export { Monitor } from './sensors/monitor.js'
export type { LatencyStats, MonitorSnapshot, PartitionSnapshot } from './sensors/monitorSnapshot.js'
export type { Sensor, StreamEventInfo } from './sensors/sensor.js'
export { SensorSet } from './sensors/sensorSet.js'
export { memoryStore } from './stores/memoryStore.js'
export type { Store, StoreWrite, TableStore, TableStoreSpec } from './stores/store.js'
export { currentEvent } from './streams/context.js'
export { StreamEvent } from './streams/event.js'
export type { GroupByOptions } from './streams/stream.js'
export { Stream } from './streams/stream.js'
export type { PartitionOption, TableOptions } from './tables/table.js'
export { Table } from './tables/table.js'
export type { Window, WindowOptions } from './tables/windowed.js'
export { WindowedTable } from './tables/windowed.js'
export type { Codec, CodecLike } from './topics/codec.js'
export { bytes, json, string } from './topics/codec.js'
export type { Message, TopicOptions } from './topics/topic.js'
export { Channel, Topic } from './topics/topic.js'
export { parseKafkaBrokers } from './transport/createTransport.js'
export { KafkaTransport } from './transport/kafka/kafkaTransport.js'
export { MemoryBroker, memoryBroker } from './transport/memory/memoryBroker.js'
export { MemoryTransport } from './transport/memory/memoryTransport.js'
export { defaultPartition, murmur2 } from './transport/partitioner.js'
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
  TransactionalProducer,
  Transport,
  TransportAdmin,
  TransportConsumer,
  TransportProducer,
} from './transport/transport.js'
export type { PageHandler, WebOptions, WebRequest, WebResponse, WebRoutes } from './web/page.js'
export type { Worker, WorkerState } from './worker/worker.js'
