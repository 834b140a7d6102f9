/**
 * The platformatic `Producer` whose produce requests produceRequest.ts encodes, and the Produce API
 * that carries them. It does not encode anything itself.
 *
 * A seam below platformatic's documented API, like client.ts (whose `PLATFORMATIC_VERSION` pins the
 * release): {@link EncodingProducer} overrides the Base client's `[kGetApi]` for 'Produce'. On an
 * upgrade, re-check that the Producer still gets its produce API there and calls it as
 * `(connection, acks, timeout, messages, options, callback)`.
 */
import { promisify } from 'node:util'
import type { API, Callback, Connection, MessageRecord } from '@platformatic/kafka'
import { createAPI, kGetApi, Producer } from '@platformatic/kafka'
import type { ProduceApi, ProduceArguments, ProduceOptions, ProduceResponse } from './produceRequest.js'
import { createRequest, FIRST_FLEXIBLE, isUncompressed, VERSIONS } from './produceRequest.js'

const PRODUCE = 0

/** Each platformatic Produce API's counterpart (platformatic has one per version). */
const apis = new WeakMap<ProduceApi, ProduceApi>()

/**
 * `platformatic`'s Produce API with requests encoded by {@link createRequest}: the same version,
 * response parser and request headers; compressed requests go to `platformatic` itself. A version
 * not encoded here is returned as it is.
 */
export function produceApi(platformatic: ProduceApi): ProduceApi {
  const { version } = platformatic
  const module = VERSIONS[version]
  if (module === undefined) return platformatic
  const cached = apis.get(platformatic)
  if (cached !== undefined) return cached
  const flexible = version >= FIRST_FLEXIBLE
  const encoded = createAPI<ProduceArguments, ProduceResponse>(
    PRODUCE,
    version,
    (
      acks: number | undefined,
      timeout: number | undefined,
      topicData: MessageRecord[],
      options?: ProduceOptions,
    ) => createRequest(version, acks, timeout, topicData, options),
    module.parseResponse,
    flexible,
    flexible,
  )
  const api = ((connection: Connection, ...args: unknown[]): void => {
    const options = typeof args[3] === 'function' ? undefined : (args[3] as ProduceOptions | undefined)
    const target = isUncompressed(options) ? encoded : platformatic
    ;(target as (connection: Connection, ...args: unknown[]) => void)(connection, ...args)
  }) as ProduceApi
  api.async = promisify(api) as ProduceApi['async']
  api.key = PRODUCE
  api.version = version
  apis.set(platformatic, api)
  return api
}

/**
 * A platformatic `Producer` whose produce requests {@link createRequest} encodes. Everything else,
 * the produce response and every other API are platformatic's.
 */
export class EncodingProducer<
  Key = Buffer,
  Value = Buffer,
  HeaderKey = Buffer,
  HeaderValue = Buffer,
> extends Producer<Key, Value, HeaderKey, HeaderValue> {
  override [kGetApi]<RequestArguments extends Array<unknown>, ResponseType>(
    name: string,
    callback: Callback<API<RequestArguments, ResponseType>>,
  ): void {
    if (name !== 'Produce') {
      super[kGetApi](name, callback)
      return
    }
    super[kGetApi]<ProduceArguments, boolean | ProduceResponse>(name, (error, api) => {
      if (error) callback(error)
      else callback(null, produceApi(api!) as unknown as API<RequestArguments, ResponseType>)
    })
  }
}
