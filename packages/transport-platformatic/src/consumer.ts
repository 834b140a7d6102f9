/**
 * A group member over @platformatic/kafka: its lifecycle (start, stop, abort, failure) and the
 * wiring of its parts. The group protocol (membership.ts), the rebalance protocol
 * (rebalanceGuard.ts), delivery (delivery.ts), commits (groupOffsets.ts) and transactions
 * (transactions.ts) are not here.
 */
import { randomUUID } from 'node:crypto'
import type {
  CommitOffset,
  ConsumerHandlers,
  ConsumerOptions,
  Logger,
  TopicPartition,
  TransactionalProducer,
  TransportConsumer,
} from '@mephisto/core'
import { BrokerError, handlerFailure, MephistoError, TransactionError } from '@mephisto/core'
import type { PlatformaticAdmin } from './admin.js'
import { KafkaClient } from './client.js'
import { GroupCoordinator } from './coordinator.js'
import { Delivery } from './delivery.js'
import { mayRetry, messageOf } from './errors.js'
import { commitOffsets, committedOffsets } from './groupOffsets.js'
import type { InstanceIdClaim } from './instanceId.js'
import { claimInstanceId } from './instanceId.js'
import type { Membership } from './membership.js'
import { GroupMembership } from './membership.js'
import type { Settings } from './options.js'
import type { ConsumerPhase } from './rebalanceGuard.js'
import { RebalanceGuard } from './rebalanceGuard.js'
import type { OffsetCommitter } from './transactions.js'

const DEFAULT_MAX_BATCH_SIZE = 500

export interface ConsumerDeps {
  brokers: readonly string[]
  url: string
  settings: Settings
  logger: Logger
  admin: PlatformaticAdmin
  /** Registers a transactional producer whose offsets go through `offsets`. */
  transactional(transactionalId: string, offsets: OffsetCommitter): Promise<TransactionalProducer>
}

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } {
  let resolve!: () => void
  let reject!: (e: unknown) => void
  const promise = new Promise<void>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/**
 * A group member with static membership (unless turned off), the co-partitioned sticky assignment
 * with standby placement, revoke before assign, read-committed delivery, commits carrying its
 * membership and, for exactly-once, one transactional producer whose commits carry it too.
 */
export class PlatformaticConsumer implements TransportConsumer {
  private phase: ConsumerPhase = 'new'
  private handlers: ConsumerHandlers | undefined
  private failure: unknown
  private placedStandbys: number[] | undefined
  private topics: string[] = []
  private stopping: Promise<void> | undefined
  private readonly started = deferred()
  private readonly claim: InstanceIdClaim | undefined
  private readonly groupId: string
  private readonly groupClient: KafkaClient
  private readonly fetchClient: KafkaClient
  private readonly coordinator: GroupCoordinator
  private readonly guard: RebalanceGuard
  private readonly delivery: Delivery
  private readonly membership: GroupMembership

  constructor(
    private readonly deps: ConsumerDeps,
    options: ConsumerOptions,
  ) {
    if (!options.groupId) throw new BrokerError('A consumer needs a non-empty groupId.')
    this.groupId = options.groupId
    const maxBatchSize = options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE
    if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) {
      throw new BrokerError(`maxBatchSize must be a whole number >= 1 (got ${maxBatchSize}).`)
    }
    // Callers who never await start() must not see an unhandled rejection.
    this.started.promise.catch(() => {})
    const { settings, brokers, logger } = deps
    const base = settings.consumer.groupInstanceId
    this.claim = base === undefined ? undefined : claimInstanceId(deps.url, this.groupId, base)
    // A JoinGroup waits up to the rebalance timeout for the others: its socket must wait longer.
    const requestTimeout = Math.max(
      settings.client.requestTimeout ?? 30_000,
      settings.consumer.rebalanceTimeout + 5_000,
    )
    this.groupClient = new KafkaClient(brokers, { ...settings.client, requestTimeout })
    this.fetchClient = new KafkaClient(brokers, settings.client)
    this.coordinator = new GroupCoordinator(this.groupClient, this.groupId)
    this.guard = new RebalanceGuard({
      groupId: this.groupId,
      logger,
      phase: () => this.phase,
      handlers: () => this.handlers!,
      fail: (error, what) => this.fail(error, what),
      assigned: () => this.started.resolve(),
      ready: (tps) => this.delivery.ready(tps),
      released: (tps) => this.delivery.released(tps),
      resumed: () => this.delivery.wake(),
    })
    this.delivery = new Delivery(
      {
        logger,
        handlers: () => this.handlers!,
        fail: (error, what) => this.fail(error, what),
        committed: (tps) => committedOffsets(this.groupClient, this.coordinator, tps, true),
        reset: (tps) => deps.admin.offsetsAt(tps, options.fromBeginning === false ? 'latest' : 'earliest'),
      },
      this.guard,
      this.fetchClient,
      settings.consumer,
      maxBatchSize,
    )
    this.membership = new GroupMembership(
      this.groupClient,
      this.coordinator,
      settings.consumer,
      this.claim?.id ?? null,
      {
        logger,
        topics: () => this.topics,
        memberData: () => ({
          owned: this.guard.lastHeld(),
          standby: this.placedStandbys ?? [],
          standbyReplicas: options.standbyReplicas ?? 0,
        }),
        beforeJoin: () => this.guard.revokeAll(),
        assigned: (assignment) => {
          this.placedStandbys = assignment.standby
          this.guard.onAssigned(assignment.partitions)
        },
        lost: (reason) => {
          this.guard.member = false
          logger.warn(
            `consumer of group "${this.groupId}" lost its membership (${reason}); it rejoins, and work not ` +
              'committed is delivered again',
          )
        },
        failed: (error) => this.fail(error, 'the group membership'),
      },
    )
  }

  /** This member's static membership id, or null for a dynamic member. */
  get groupInstanceId(): string | null {
    return this.claim?.id ?? null
  }

  async start(topics: string[], handlers: ConsumerHandlers): Promise<void> {
    if (this.phase !== 'new') {
      throw new BrokerError(
        `Consumer of group "${this.groupId}" was already started; create a new consumer to join again.`,
      )
    }
    this.phase = 'running'
    this.handlers = handlers
    this.topics = [...new Set(topics)]
    let missing: string[]
    try {
      const existing = new Set(await this.deps.admin.listTopics())
      missing = this.topics.filter((t) => !existing.has(t))
    } catch (error) {
      await this.giveUp()
      throw new BrokerError(
        `Consumer of group "${this.groupId}" could not start on ${this.deps.url}: ${messageOf(error)}`,
        {
          cause: error,
          retriable: error instanceof MephistoError ? error.retriable : mayRetry(error),
        },
      )
    }
    if (missing.length > 0) {
      await this.giveUp()
      throw new BrokerError(
        `Cannot subscribe group "${this.groupId}" to missing topic(s) ${missing.map((t) => `"${t}"`).join(', ')} ` +
          `on ${this.deps.url}: create them first (admin.ensureTopics).`,
      )
    }
    this.delivery.start()
    this.membership.start()
    await this.started.promise
  }

  commit(offsets: CommitOffset[]): Promise<void> {
    return commitOffsets(
      this.groupClient,
      this.coordinator,
      {
        url: this.deps.url,
        started: this.phase !== 'new',
        membership: this.currentMembership(),
        failure: this.failure,
        mayCommit: (topic, partition) => this.guard.mayCommit(topic, partition),
      },
      offsets,
    )
  }

  /** With `stable`, waits for offsets of transactions still open (OffsetFetch `require_stable`). */
  committed(partitions: TopicPartition[], options: { stable?: boolean } = {}): Promise<CommitOffset[]> {
    return committedOffsets(this.groupClient, this.coordinator, partitions, options.stable ?? false)
  }

  seek(offsets: CommitOffset[]): void {
    this.delivery.seek(offsets)
  }

  pause(partitions: TopicPartition[]): void {
    this.guard.pause(partitions)
  }

  resume(partitions: TopicPartition[]): void {
    this.guard.resume(partitions)
  }

  assignment(): TopicPartition[] {
    return this.guard.assignment()
  }

  /** The standby copies the group leader placed here (undefined before the first assignment). */
  standbys(): number[] | undefined {
    return this.placedStandbys === undefined ? undefined : [...this.placedStandbys]
  }

  /**
   * One transactional producer for this member (KIP-447): its id is `transactionalId` completed with
   * this member's static membership id (a fresh one for a dynamic member), so a worker restarted
   * with the same id fences its own previous producer and aborts its open transaction at once. Its
   * commits carry this member's generation, member id and instance id: the group refuses them once
   * it moved on, and they are refused here for partitions the member no longer holds.
   */
  transactionalProducer(transactionalId: string): Promise<TransactionalProducer> {
    const id = `${transactionalId}-${this.claim?.id ?? randomUUID()}`
    return this.deps.transactional(id, {
      coordinator: (groupId) => {
        if (groupId !== this.groupId) {
          throw new BrokerError(
            `Producer ${id} commits offsets for group "${this.groupId}", the group of its consumer, not "${groupId}".`,
          )
        }
        return { client: this.groupClient, coordinator: this.coordinator }
      },
      membership: (groupId, offsets) => this.transactionMembership(id, groupId, offsets),
    })
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop()
    return this.stopping
  }

  async abort(): Promise<void> {
    if (this.phase === 'aborted' || this.phase === 'stopped') return
    this.phase = 'aborted'
    this.guard.member = false
    this.started.resolve()
    // Nothing is revoked, drained or committed. A static member stays in the group: a worker that
    // comes back with its id within the session timeout gets its partitions back without a rebalance.
    await this.delivery.stop()
    await this.membership.abort()
    await this.closeClients()
    this.claim?.release()
  }

  private async doStop(): Promise<void> {
    if (this.phase === 'aborted' || this.phase === 'stopped') return
    const failed = this.phase === 'failed'
    if (!failed && this.phase !== 'new') {
      this.phase = 'stopping'
      await this.guard.assigning
      await this.guard.revokeAll()
    }
    this.guard.member = false
    await this.delivery.stop()
    if (!failed) await this.membership.leave()
    await this.closeClients()
    if (this.phase !== 'failed') this.phase = 'stopped'
    this.started.resolve()
    this.claim?.release()
    if (this.failure !== undefined) throw this.failure
  }

  /** The membership a commit goes out with: only while this member runs (or revokes) in the group. */
  private currentMembership(): Membership | undefined {
    if (!this.guard.member || (this.phase !== 'running' && this.phase !== 'stopping')) return undefined
    return this.membership.current()
  }

  private transactionMembership(id: string, groupId: string, offsets: readonly CommitOffset[]): Membership {
    const membership = this.currentMembership()
    if (membership === undefined) {
      throw new TransactionError(
        'FENCED',
        `Transaction of ${id} refused: its consumer is no longer a member of group "${groupId}"; the group fenced it.`,
      )
    }
    const lost = offsets.find((o) => !this.guard.mayCommit(o.topic, o.partition))
    if (lost !== undefined) {
      throw new TransactionError(
        'FENCED',
        `Transaction of ${id} refused: its consumer no longer owns ${lost.topic}[${lost.partition}] in group ` +
          `"${groupId}"; the group fenced it.`,
      )
    }
    return membership
  }

  /** A handler or the membership failed: like the memory broker, the member leaves as if it had crashed. */
  private fail(error: unknown, what: string): void {
    if (this.phase === 'failed' || this.phase === 'aborted' || this.phase === 'stopped') return
    const failure: MephistoError = handlerFailure(error, what, this.groupId)
    this.deps.logger.error(`${what} of the consumer of group "${this.groupId}" failed; it left the group`, {
      err: failure,
    })
    this.failure = failure
    this.phase = 'failed'
    this.guard.member = false
    this.started.reject(failure)
    void (async () => {
      await this.delivery.stop()
      await this.membership.abort()
      await this.closeClients()
      this.claim?.release()
    })()
    try {
      this.handlers?.onLost?.(failure)
    } catch {}
  }

  /** start() could not join: nothing was held, nothing to revoke or leave. */
  private async giveUp(): Promise<void> {
    this.phase = 'stopped'
    this.started.resolve()
    this.claim?.release()
    await this.closeClients()
  }

  private async closeClients(): Promise<void> {
    await Promise.all([this.groupClient.close(), this.fetchClient.close()])
  }
}
