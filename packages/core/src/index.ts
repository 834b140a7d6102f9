// The public API of @mephisto/core, by audience. Nothing outside this file is public.
// biome-ignore-all assist/source/organizeImports: the exports are grouped by audience, not sorted

// ---------------------------------------------------------------------------------------------
// Building apps: the App and what it declares (topics, agents, streams, tables, windows), codecs,
// timers, pages, errors to branch on, the Monitor behind /stats.
// ---------------------------------------------------------------------------------------------
export type { AgentFn, AgentOptions, AskOptions, ErrorAction, ErrorHandler, Sink } from './agents/agent.js'
export { Agent } from './agents/agent.js'
export type { StartOptions } from './app/app.js'
export { App } from './app/app.js'
export type {
  AppOptions,
  AppSettings,
  KafkaOptions,
  ProcessingGuarantee,
  TransportFactory,
} from './app/options.js'
export { DEFAULTS } from './app/options.js'
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
export type { CrontabOptions, TaskOptions, TimerOptions } from './base/schedule.js'
export type { JoinResult, JoinType, StreamJoinOptions } from './joins/joinOptions.js'
export type { MonitorOptions } from './sensors/monitor.js'
export { Monitor } from './sensors/monitor.js'
export type {
  AgentSnapshot,
  LatencyStats,
  MonitorSnapshot,
  PartitionSnapshot,
} from './sensors/monitorSnapshot.js'
export { currentEvent } from './streams/context.js'
export { StreamEvent } from './streams/event.js'
export type { GroupByOptions } from './streams/stream.js'
export type { JoinableTable, TableJoinOptions } from './streams/stream.js'
export { Stream } from './streams/stream.js'
export type { PartitionOption, TableOptions } from './tables/table.js'
export { Table } from './tables/table.js'
export type { LateEventPolicy, Window, WindowOptions } from './tables/windowed.js'
export { WindowedTable } from './tables/windowed.js'
export type { SessionOptions } from './tables/sessionWindows.js'
export { SessionWindowedTable } from './tables/sessionWindows.js'
export { SlidingWindowedTable } from './tables/slidingWindows.js'
export type { WindowView } from './tables/windowView.js'
export type { Codec, CodecLike } from './topics/codec.js'
export { bytes, json, string } from './topics/codec.js'
export type { Message, TopicOptions } from './topics/topic.js'
export { Channel, Topic } from './topics/topic.js'
export { FORWARDED_HEADER, WORKER_HEADER } from './web/forwarding.js'
export type {
  PageHandler,
  PageOptions,
  PageRouteBy,
  WebOptions,
  WebRequest,
  WebResponse,
  WebRoutes,
} from './web/page.js'

// ---------------------------------------------------------------------------------------------
// Writing plug-ins: stores, sensors and monitors, transports (the contracts, and the two built-in
// transports to wrap or compare against).
// ---------------------------------------------------------------------------------------------
export type { AgentProgress, Sensor, StreamEventInfo, WorkerProbe } from './sensors/sensor.js'
export { currentStreamEventInfo } from './streams/context.js'
export type { SensorSetOptions } from './sensors/sensorSet.js'
export { SensorSet } from './sensors/sensorSet.js'
export type { MemoryStoreOptions } from './stores/memoryStore.js'
export { memoryStore } from './stores/memoryStore.js'
export type { Store, StoreWrite, TableStore, TableStoreSpec } from './stores/store.js'
export type { StickyMember, StickyPlan } from './transport/assignment.js'
export { stickyCopartitionedAssignment } from './transport/assignment.js'
export type { TransportOptions } from './transport/createTransport.js'
export type { MemberData } from './transport/assignmentData.js'
export {
  COPARTITIONED_ASSIGNER,
  decodeAssignmentData,
  decodeMemberData,
  encodeAssignmentData,
  encodeMemberData,
} from './transport/assignmentData.js'
export {
  createTransport,
  DEFAULT_KAFKA_CLIENT,
  parseKafkaBrokers,
  registeredTransports,
  registerTransport,
} from './transport/createTransport.js'
export type { KafkaClientOptions, KafkaTransportOptions } from './transport/kafka/kafkaTransport.js'
export { KafkaTransport } from './transport/kafka/kafkaTransport.js'
export type { MemoryBrokerOptions } from './transport/memory/memoryBroker.js'
export { MemoryBroker, memoryBroker } from './transport/memory/memoryBroker.js'
export type { MemoryTransportOptions } from './transport/memory/memoryTransport.js'
export { MemoryTransport } from './transport/memory/memoryTransport.js'
export { handlerFailure } from './transport/handlerFailure.js'
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

// ---------------------------------------------------------------------------------------------
// Testing and tools: the clock a harness replaces, the seam the testkit drives an app through,
// the worker as tools see it.
// ---------------------------------------------------------------------------------------------
export type { AppTestingSeam } from './app/testing.js'
export type { Clock, TimerHandle } from './base/clock.js'
export { realClock, sleep } from './base/clock.js'
export type { Worker, WorkerState } from './worker/worker.js'
