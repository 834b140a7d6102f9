/**
 * One member of a consumer group on the classic protocol, spoken directly (JoinGroup, SyncGroup,
 * Heartbeat, LeaveGroup): static membership, eager rebalances with a revoke before every rejoin,
 * heartbeats that go on while the runtime revokes, the leader's plan. It does not fetch, deliver or
 * commit; it tells its host what the group decided.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger, MemberData, MephistoError } from '@mephisto/core'
import { BrokerError, COPARTITIONED_ASSIGNER, ConfigurationError } from '@mephisto/core'
import type { MemberAssignment } from './assigner.js'
import { assignGroup, decodeAssignment, encodeSubscription, subscribedTopics } from './assigner.js'
import type { KafkaClient } from './client.js'
import type { GroupCoordinator } from './coordinator.js'
import { hasKafkaError, isNetworkError, mayRetry, messageOf } from './errors.js'
import type { Settings } from './options.js'

/** The group membership a commit is made with (KIP-447: the group refuses a stale one). */
export interface Membership {
  readonly groupId: string
  readonly generationId: number
  readonly memberId: string
  readonly groupInstanceId: string | null
}

/** What the member tells the consumer it belongs to. */
export interface MembershipHost {
  readonly logger: Logger
  /** The topics to subscribe to. */
  topics(): readonly string[]
  /** What to announce at the next join (held partitions, standby copies). */
  memberData(): MemberData
  /** Before every (re)join: revoke what is held; heartbeats go on meanwhile. */
  beforeJoin(): Promise<void>
  /** A join completed with this assignment. */
  assigned(assignment: MemberAssignment): void
  /** The group moved on without this member (its session expired): what it holds is no longer its own. */
  lost(reason: string): void
  /** The member cannot stay in the group: no more joins. */
  failed(error: MephistoError): void
}

interface JoinGroupResponse {
  generationId: number
  protocolName: string | null
  leader: string
  skipAssignment?: boolean
  memberId: string
  members: { memberId: string; metadata: Buffer }[]
}

/** Errors after which joining again cannot help. */
const FATAL_JOIN_ERRORS = [
  'GROUP_MAX_SIZE_REACHED',
  'INCONSISTENT_GROUP_PROTOCOL',
  'INVALID_SESSION_TIMEOUT',
  'GROUP_AUTHORIZATION_FAILED',
  'INVALID_GROUP_ID',
  'UNSUPPORTED_VERSION',
]

type Phase = 'idle' | 'joining' | 'member' | 'closed'

/**
 * A group member: {@link start} joins and keeps the membership until {@link leave} or
 * {@link abort}. A rejoin (the group rebalances, or forgot this member) first awaits
 * `host.beforeJoin()`, heartbeating meanwhile so the group keeps the member while the runtime
 * drains and commits (Kafka's eager protocol, as the Java client runs it).
 */
export class GroupMembership {
  private phase: Phase = 'idle'
  private memberId = ''
  private generationId = -1
  private heartbeatTimer: NodeJS.Timeout | undefined
  private lastHeartbeat = 0
  private rejoinSignal: (() => void) | undefined
  private loop: Promise<void> | undefined
  private lastWarning = 0

  constructor(
    private readonly client: KafkaClient,
    private readonly coordinator: GroupCoordinator,
    private readonly settings: Settings['consumer'],
    /** The static membership id, or null for a dynamic member. */
    readonly groupInstanceId: string | null,
    private readonly host: MembershipHost,
  ) {}

  get groupId(): string {
    return this.coordinator.groupId
  }

  /** The membership commits are made with: defined from a completed join until the next join starts. */
  current(): Membership | undefined {
    if (this.phase !== 'member') return undefined
    return {
      groupId: this.groupId,
      generationId: this.generationId,
      memberId: this.memberId,
      groupInstanceId: this.groupInstanceId,
    }
  }

  /** Starts joining; what happens next reaches the host. */
  start(): void {
    this.loop ??= this.run()
  }

  /** Leaves the group (LeaveGroup, static membership included): the others take the partitions at once. */
  async leave(): Promise<void> {
    this.close()
    // A join in progress completes first (its socket is busy until then): leave with its member id.
    await this.loop
    const memberId = this.memberId
    if (memberId === '') return
    try {
      await this.coordinator.run(
        (c) =>
          this.client.call('LeaveGroup', c, this.groupId, [
            { memberId, groupInstanceId: this.groupInstanceId, reason: 'the worker stops' },
          ]),
        5_000,
      )
    } catch (error) {
      if (!hasKafkaError(error, 'UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID')) {
        this.host.logger.warn(`could not leave group "${this.groupId}" cleanly: ${messageOf(error)}`)
      }
    }
  }

  /**
   * Stops heartbeating and joining, as a crash would. A static member stays in the group until its
   * session times out, so a worker restarted with the same id meanwhile gets its partitions back
   * without a rebalance; a dynamic member leaves, so its partitions move at once.
   */
  async abort(): Promise<void> {
    if (this.groupInstanceId === null) {
      await this.leave()
      return
    }
    this.close()
  }

  private closed(): boolean {
    return this.phase === 'closed'
  }

  private close(): void {
    this.phase = 'closed'
    this.stopHeartbeats()
    this.rejoinSignal?.()
  }

  private async run(): Promise<void> {
    while (!this.closed()) {
      await this.host.beforeJoin()
      if (this.closed()) return
      this.phase = 'joining'
      this.stopHeartbeats()
      let assignment: MemberAssignment
      try {
        assignment = await this.join()
      } catch (error) {
        if (this.closed()) return
        this.phase = 'closed'
        this.host.failed(this.failure(error))
        return
      }
      if (this.closed()) return
      const rejoin = new Promise<void>((resolve) => {
        this.rejoinSignal = resolve
      })
      this.phase = 'member'
      this.lastHeartbeat = Date.now()
      this.scheduleHeartbeat()
      this.host.assigned(assignment)
      await rejoin
    }
  }

  /** JoinGroup and SyncGroup until this member has an assignment of a stable generation. */
  private async join(): Promise<MemberAssignment> {
    const deadline = Date.now() + Math.max(this.settings.rebalanceTimeout, this.settings.sessionTimeout) * 2
    const stopped = (): boolean => this.closed()
    const remaining = (): number => Math.max(1_000, deadline - Date.now())
    for (let attempt = 0; ; attempt++) {
      if (stopped()) throw new BrokerError(`Group "${this.groupId}": stopped while joining.`)
      const protocols = [
        {
          name: COPARTITIONED_ASSIGNER,
          metadata: encodeSubscription(this.host.topics(), this.host.memberData()),
        },
      ]
      let join: JoinGroupResponse
      try {
        join = await this.coordinator.run(
          (c) =>
            this.client.call<JoinGroupResponse>(
              'JoinGroup',
              c,
              this.groupId,
              this.settings.sessionTimeout,
              this.settings.rebalanceTimeout,
              this.memberId,
              this.groupInstanceId,
              'consumer',
              protocols,
              null,
            ),
          remaining(),
          stopped,
        )
      } catch (error) {
        await this.retryJoin(error, deadline, attempt)
        continue
      }
      this.memberId = join.memberId
      this.generationId = join.generationId
      let assignments: { memberId: string; assignment: Buffer }[] = []
      if (join.leader === join.memberId && !join.skipAssignment) {
        try {
          assignments = await this.plan(join.members)
        } catch (error) {
          // Metadata out of reach for a moment: join again (the group waits for this leader's plan).
          await this.retryJoin(error, deadline, attempt)
          continue
        }
      }
      try {
        const sync = await this.coordinator.run(
          (c) =>
            this.client.call<{ assignment: Buffer }>(
              'SyncGroup',
              c,
              this.groupId,
              join.generationId,
              join.memberId,
              this.groupInstanceId,
              'consumer',
              join.protocolName,
              assignments,
            ),
          remaining(),
          stopped,
        )
        return decodeAssignment(sync.assignment)
      } catch (error) {
        await this.retryJoin(error, deadline, attempt)
      }
    }
  }

  /** The leader's plan: the members' assignments, from fresh metadata of every subscribed topic. */
  private async plan(
    members: JoinGroupResponse['members'],
  ): Promise<{ memberId: string; assignment: Buffer }[]> {
    const metadata = await this.client.metadata(subscribedTopics(members), true)
    return assignGroup(members, (topic) => {
      const count = metadata.topics.get(topic)?.partitionsCount ?? 0
      return Array.from({ length: count }, (_, i) => i)
    })
  }

  /** After a failed JoinGroup or SyncGroup: adjusts the member id and waits, or throws when it cannot help. */
  private async retryJoin(error: unknown, deadline: number, attempt: number): Promise<void> {
    if (this.closed()) throw error
    if (hasKafkaError(error, 'FENCED_INSTANCE_ID')) throw error
    if (hasKafkaError(error, 'MEMBER_ID_REQUIRED')) {
      // The first join of a dynamic member: the group names it and expects the join again.
      const named = (error as { response?: { memberId?: string } }).response?.memberId
      if (named) this.memberId = named
      return
    }
    if (hasKafkaError(error, 'UNKNOWN_MEMBER_ID')) {
      this.memberId = ''
      return
    }
    if (hasKafkaError(error, 'REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION')) return
    if (hasKafkaError(error, ...FATAL_JOIN_ERRORS) || !mayRetry(error) || Date.now() >= deadline) throw error
    this.warn(`joining group "${this.groupId}" failed, retrying: ${messageOf(error)}`)
    await sleep(Math.min(2_000, 200 * 2 ** attempt))
  }

  private scheduleHeartbeat(): void {
    this.heartbeatTimer = setTimeout(() => void this.heartbeat(), this.settings.heartbeatInterval)
  }

  private stopHeartbeats(): void {
    clearTimeout(this.heartbeatTimer)
    this.heartbeatTimer = undefined
  }

  private async heartbeat(): Promise<void> {
    const generationId = this.generationId
    const memberId = this.memberId
    try {
      await this.coordinator.run(
        (c) => this.client.call('Heartbeat', c, this.groupId, generationId, memberId, this.groupInstanceId),
        this.settings.heartbeatInterval,
        () => this.phase !== 'member',
      )
      this.lastHeartbeat = Date.now()
    } catch (error) {
      if (this.phase !== 'member' || generationId !== this.generationId) return
      if (hasKafkaError(error, 'REBALANCE_IN_PROGRESS')) {
        // Still a member (the group counted the heartbeat); it waits for this one to rejoin.
        this.lastHeartbeat = Date.now()
        this.rejoinSignal?.()
      } else if (hasKafkaError(error, 'FENCED_INSTANCE_ID')) {
        this.phase = 'closed'
        this.host.failed(this.failure(error))
        this.rejoinSignal?.()
        return
      } else if (hasKafkaError(error, 'UNKNOWN_MEMBER_ID', 'ILLEGAL_GENERATION')) {
        this.membershipLost(error)
      } else if (Date.now() - this.lastHeartbeat > this.settings.sessionTimeout) {
        this.membershipLost(error)
      } else {
        this.warn(`heartbeat of group "${this.groupId}" failed: ${messageOf(error)}`)
      }
    }
    if (this.phase === 'member') this.scheduleHeartbeat()
  }

  private membershipLost(error: unknown): void {
    if (hasKafkaError(error, 'UNKNOWN_MEMBER_ID')) this.memberId = ''
    this.host.lost(messageOf(error))
    this.rejoinSignal?.()
  }

  /** The error that ends this membership, as the runtime should see it. */
  private failure(error: unknown): MephistoError {
    if (hasKafkaError(error, 'FENCED_INSTANCE_ID')) {
      return new ConfigurationError(
        `Another worker uses instance id "${this.groupInstanceId}" in group "${this.groupId}": two ` +
          'members with one static membership id fence each other. Give each worker its own ' +
          'MEPHISTO_INSTANCE_ID (or platformatic.consumer.groupInstanceId), or stop the other one.',
        { cause: error },
      )
    }
    if (hasKafkaError(error, ...FATAL_JOIN_ERRORS)) {
      return new BrokerError(`Cannot join group "${this.groupId}": ${messageOf(error)}`, { cause: error })
    }
    return new BrokerError(`Cannot join group "${this.groupId}": ${messageOf(error)}`, {
      cause: error,
      retriable: isNetworkError(error) || mayRetry(error),
    })
  }

  /** At most one warning every 10 s: a broker out of reach would otherwise log every heartbeat. */
  private warn(message: string): void {
    const now = Date.now()
    if (now - this.lastWarning < 10_000) return
    this.lastWarning = now
    this.host.logger.warn(message)
  }
}
