/**
 * The kafkajs options of a Mephisto consumer: Mephisto's defaults, the user's kafkajs options over
 * them, and what Mephisto must control itself. It does not create, run or watch a consumer.
 */
import type {
  ConsumerConfig,
  ConsumerRunConfig,
  EachBatchHandler,
  PartitionAssigner,
  RetryOptions,
} from 'kafkajs'
import { BrokerError } from '../../base/errors.js'
import type { ConsumerOptions } from '../transport.js'

const DEFAULT_MAX_BATCH_SIZE = 500
const DEFAULT_HEARTBEAT_INTERVAL = 3000
/** Batches of different partitions handled at once (kafkajs `partitionsConsumedConcurrently`). */
const DEFAULT_CONCURRENCY = 4

/** What a consumer reads of its options, validated. */
export interface ConsumerSettings {
  groupId: string
  /** Most records per `onBatch`. */
  maxBatchSize: number
  /** How often the consumer heartbeats while the runtime holds a batch or a revoke. */
  heartbeatInterval: number
}

/** Validates the options a consumer is created with; throws a {@link BrokerError} naming the option. */
export function consumerSettings(
  options: ConsumerOptions,
  config: Partial<ConsumerConfig>,
): ConsumerSettings {
  if (!options.groupId) throw new BrokerError('A consumer needs a non-empty groupId.')
  const maxBatchSize = options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) {
    throw new BrokerError(`maxBatchSize must be a whole number >= 1 (got ${maxBatchSize}).`)
  }
  return {
    groupId: options.groupId,
    maxBatchSize,
    heartbeatInterval: config.heartbeatInterval ?? DEFAULT_HEARTBEAT_INTERVAL,
  }
}

/** `kafka.consumer(...)`: the user's options over Mephisto's defaults, then what Mephisto needs. */
export function kafkajsConsumerConfig(
  config: Partial<ConsumerConfig>,
  groupId: string,
  restartOnFailure: NonNullable<RetryOptions['restartOnFailure']>,
  assigner: PartitionAssigner,
): ConsumerConfig {
  return {
    sessionTimeout: 30_000,
    rebalanceTimeout: 60_000,
    // kafkajs waits this long before fetching again when every partition is paused (backpressure),
    // and a stop waits for the fetch in progress: 5 s (its default) is slow.
    maxWaitTimeInMs: 500,
    ...config,
    retry: { ...config.retry, restartOnFailure },
    groupId,
    // Kafka creates a missing topic on a metadata request unless told not to; the memory broker
    // never does, and a typo should fail rather than create a topic.
    allowAutoTopicCreation: false,
    partitionAssigners: [assigner],
  }
}

/** `consumer.run(...)`: Mephisto resolves offsets and commits itself. */
export function kafkajsRunConfig(
  run: Partial<ConsumerRunConfig>,
  eachBatch: EachBatchHandler,
): ConsumerRunConfig {
  return {
    partitionsConsumedConcurrently: DEFAULT_CONCURRENCY,
    ...run,
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch,
  }
}
