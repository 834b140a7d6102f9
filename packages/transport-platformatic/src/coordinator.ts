/**
 * A consumer group's coordinator: finding the broker that coordinates the group and running group
 * requests against it, finding it again when it moves. It does not know what the requests mean.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Broker, Connection } from '@platformatic/kafka'
import type { KafkaClient } from './client.js'
import { COORDINATOR_MOVED, hasKafkaError, isNetworkError } from './errors.js'

const GROUP_KEY = 0

interface FindCoordinatorResponse {
  coordinators: { key: string; nodeId: number; host: string; port: number; errorCode: number }[]
}

/** The coordinator of group `groupId`, found through `client` and cached until it moves. */
export class GroupCoordinator {
  private broker: Broker | undefined

  constructor(
    private readonly client: KafkaClient,
    readonly groupId: string,
  ) {}

  /**
   * Runs `request` on a connection to the coordinator. When the coordinator moved, is loading, or
   * cannot be reached, it is found again and `request` retried (backoff 100 ms doubling to 1 s)
   * until `timeoutMs` has passed or `stopped()` says to give up; other errors reject at once.
   */
  async run<T>(
    request: (connection: Connection) => Promise<T>,
    timeoutMs: number,
    stopped: () => boolean = () => false,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs
    for (let attempt = 0; ; attempt++) {
      try {
        return await request(await this.connection())
      } catch (error) {
        const moved = hasKafkaError(error, ...COORDINATOR_MOVED) || isNetworkError(error)
        if (!moved || stopped() || Date.now() >= deadline) throw error
        this.broker = undefined
        if (isNetworkError(error)) this.client.clearMetadata()
        await sleep(Math.min(1000, 100 * 2 ** attempt))
      }
    }
  }

  /** Forgets the coordinator: the next request finds it again. */
  forget(): void {
    this.broker = undefined
  }

  private async connection(): Promise<Connection> {
    this.broker ??= await this.find()
    return this.client.connection(this.broker)
  }

  private async find(): Promise<Broker> {
    const response = await this.client.call<FindCoordinatorResponse>(
      'FindCoordinator',
      await this.client.anyConnection(),
      GROUP_KEY,
      [this.groupId],
    )
    const found = response.coordinators[0]
    if (!found || found.nodeId < 0) throw new Error(`No coordinator for group "${this.groupId}" yet.`)
    return { host: found.host, port: found.port }
  }
}
