/**
 * The reach into @platformatic/kafka below its clients' documented methods: its exported `Base`
 * client's symbol-keyed members (protocol version negotiation, connections) and its protocol APIs,
 * called by name. Two other seams lean on the same release: encodingProducer.ts (the Producer's
 * `[kGetApi]` for Produce) and fetchResponse.ts (a Fetch API of our own on platformatic's request
 * writers). client.test.ts pins the version this was written against.
 * It does not decide anything about groups, offsets or records.
 */
import type { BaseOptions, Broker, ClusterMetadata, Connection } from '@platformatic/kafka'
import { Admin, kGetApi, kGetBootstrapConnection, kGetConnection } from '@platformatic/kafka'

/**
 * The @platformatic/kafka release this seam was written against (client.test.ts fails on another).
 * On an upgrade, re-check: the `Base` members used here; the two seams named above; whether
 * `InitProducerId` still needs -1/-1 from us (transactions.ts, `NEW_PRODUCER`); whether its
 * `Consumer` now sends each member its
 * own assignment user data, reads the one it receives and can close without leaving the group
 * (membership.ts speaks the group protocol itself because 2.12.1 does none of the three).
 */
export const PLATFORMATIC_VERSION = '2.12.1'

/** Options of a platformatic client, less the bootstrap list, which the transport gives. */
export type ClientOptions = Partial<Omit<BaseOptions, 'bootstrapBrokers'>>

type Callback<T> = (error: Error | null, value?: T) => void
/** The shape of every protocol API platformatic returns from `kGetApi`: arguments, then a callback. */
export type ProtocolApi = ((connection: Connection, ...args: unknown[]) => void) & { version: number }

/**
 * A connection set to a cluster: the negotiated protocol versions, one socket per broker, and the
 * cluster metadata cache of a platformatic client (an `Admin`, whose `Base` members do the work).
 * Each group member gets one of its own (its JoinGroup can block a socket for a whole rebalance),
 * and each consumer another for fetches.
 */
export class KafkaClient {
  private readonly base: Admin

  constructor(brokers: readonly string[], options: ClientOptions) {
    this.base = new Admin({ ...options, bootstrapBrokers: [...brokers] } as BaseOptions)
  }

  /** The platformatic admin client on these connections. */
  get admin(): Admin {
    return this.base
  }

  /**
   * Calls the protocol API `name` (`'JoinGroup'`, `'OffsetFetch'`, ...) at the highest version both
   * this platformatic release and the broker speak. Rejects with platformatic's error: a response
   * carrying error codes rejects with a `ResponseError` whose `response` holds the whole answer.
   */
  call<T>(name: string, connection: Connection, ...args: unknown[]): Promise<T> {
    return new Promise<ProtocolApi>((resolve, reject) => {
      this.api(name, (error, api) => (error ? reject(error) : resolve(api!)))
    }).then((api) => this.callApi<T>(api, connection, ...args))
  }

  /** Calls a protocol API object of our own (fetchResponse.ts) on `connection`; rejects like {@link call}. */
  callApi<T>(api: ProtocolApi, connection: Connection, ...args: unknown[]): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      api(connection, ...args, ((err: Error | null, response?: T) =>
        err ? reject(err) : resolve(response as T)) satisfies Callback<T>)
    })
  }

  /** The version of API `name` that {@link call} uses. */
  version(name: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.api(name, (error, api) => (error ? reject(error) : resolve(api!.version)))
    })
  }

  /** The (pooled) connection to a broker. */
  connection(broker: Broker): Promise<Connection> {
    return new Promise((resolve, reject) => {
      this.base[kGetConnection](broker, (error, connection) => (error ? reject(error) : resolve(connection!)))
    })
  }

  /** A connection to any reachable broker (bootstrap list first, then the brokers metadata named). */
  anyConnection(): Promise<Connection> {
    return new Promise((resolve, reject) => {
      this.base[kGetBootstrapConnection]((error, connection) =>
        error ? reject(error) : resolve(connection!),
      )
    })
  }

  /** Cluster metadata for `topics` (cached for `metadataMaxAge` unless `force`). */
  metadata(topics: readonly string[], force = false): Promise<ClusterMetadata> {
    return this.base.metadata({ topics: [...topics], forceUpdate: force })
  }

  /** Forgets cached metadata: the next {@link metadata} asks the cluster (a leader moved). */
  clearMetadata(): void {
    this.base.clearMetadata()
  }

  /** Closes every connection. Requests in flight fail. */
  async close(): Promise<void> {
    await this.base.close().catch(() => {})
  }

  private api(name: string, callback: Callback<ProtocolApi>): void {
    ;(this.base[kGetApi] as (n: string, cb: Callback<ProtocolApi>) => void)(name, callback)
  }
}
