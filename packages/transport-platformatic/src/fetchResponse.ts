/**
 * The Fetch API (versions 13 to 17) with a response parser of our own: the same request as
 * @platformatic/kafka's, but each partition's record set is kept as one contiguous Buffer for
 * records.ts to decode, instead of platformatic's per-record objects built through its
 * DynamicBuffer reader (the costliest step of a fetch in a profile). It does not decode records.
 */
import type { API, Reader, RequestCreator } from '@platformatic/kafka'
import {
  createAPI,
  fetchV13,
  fetchV14,
  fetchV15,
  fetchV16,
  fetchV17,
  ResponseError,
} from '@platformatic/kafka'
import type { AbortedTransaction } from './records.js'

/** One partition of a Fetch response, its records undecoded. */
export interface FetchedPartition {
  partitionIndex: number
  errorCode: number
  highWatermark: bigint
  lastStableOffset: bigint
  logStartOffset: bigint
  abortedTransactions: AbortedTransaction[] | null
  /** The partition's record batches as the broker sent them (possibly empty; the last may be cut short). */
  recordSet: Buffer
}

export interface FetchResponse {
  errorCode: number
  responses: { topicId: string; partitions: FetchedPartition[] }[]
}

const EMPTY: Buffer = Buffer.alloc(0)
const FETCH_KEY = 1

/**
 * Versions 13 to 17 answer in the same layout (topic ids, flexible encoding); 16 and 17 may add
 * the leaders' endpoints in a tagged field, which is skipped here like every tagged field.
 */
function parseResponse(
  _correlationId: number,
  apiKey: number,
  apiVersion: number,
  reader: Reader,
): FetchResponse {
  reader.readInt32() // throttle_time_ms
  const errorCode = reader.readInt16()
  reader.readInt32() // session_id
  const response: FetchResponse = {
    errorCode,
    responses: reader.readArray((r) => ({
      topicId: r.readUUID(),
      partitions: r.readArray(readPartition, true, true),
    })),
  }
  reader.readTaggedFields()
  if (errorCode !== 0) {
    throw new ResponseError(apiKey, apiVersion, { '': [errorCode, null] }, response)
  }
  return response
}

function readPartition(r: Reader): FetchedPartition {
  const partitionIndex = r.readInt32()
  const errorCode = r.readInt16()
  const highWatermark = r.readInt64()
  const lastStableOffset = r.readInt64()
  const logStartOffset = r.readInt64()
  const abortedTransactions = r.readNullableArray((a) => ({
    producerId: a.readInt64(),
    firstOffset: a.readInt64(),
  }))
  r.readInt32() // preferred_read_replica
  // COMPACT_RECORDS: the length plus one, 0 for null.
  const size = r.readUnsignedVarInt() - 1
  let recordSet: Buffer = EMPTY
  if (size > 0) {
    recordSet = r.buffer.slice(r.position, r.position + size)
    r.skip(size)
  }
  return {
    partitionIndex,
    errorCode,
    highWatermark,
    lastStableOffset,
    logStartOffset,
    abortedTransactions,
    recordSet,
  }
}

const requests: Record<number, RequestCreator> = {
  13: fetchV13.createRequest,
  14: fetchV14.createRequest,
  15: fetchV15.createRequest,
  16: fetchV16.createRequest,
  17: fetchV17.createRequest,
}

/** The API object platformatic calls with a connection, per version we parse. */
export type FetchApi = API<unknown[], FetchResponse>
const apis = new Map<number, FetchApi>()

/**
 * The Fetch API of `version` with our parser, or undefined for a version whose layout differs
 * (older brokers: the caller uses platformatic's own).
 */
export function fetchApi(version: number): FetchApi | undefined {
  let api = apis.get(version)
  if (api === undefined) {
    const create = requests[version]
    if (create === undefined) return undefined
    api = createAPI<unknown[], FetchResponse>(FETCH_KEY, version, create, parseResponse)
    apis.set(version, api)
  }
  return api
}
