/**
 * Produce requests (versions 3 to 11, uncompressed) written in one pass into one Buffer, the bytes
 * @platformatic/kafka writes (encodingProducer.ts has platformatic's Producer send them). platformatic builds
 * each record in a Writer of its own and concatenates them twice per batch (for the CRC, then for
 * the request); here a request's size is counted first and every record batch is written straight
 * into one `Buffer.allocUnsafe`. It does not compress, parse responses or decide what to send: a
 * compressed request, another Produce version or a message it does not expect (keys that are not
 * bytes, headers that are not a Map, number timestamps) goes to platformatic's own encoder, and
 * responses to platformatic's parser of the same version.
 *
 * One difference, on purpose: a record whose timestamp is 2^31 ms (24.8 days) or more away from
 * its batch's first one gets Kafka's zigzag varlong delta. platformatic 2.12.1 (its dynamic-buffer
 * zigzags 64-bit values with `>> 31n`) writes a delta that decodes to another timestamp.
 *
 * produceRequest.test.ts fails if the bytes platformatic writes have changed (on an upgrade of
 * the release client.ts pins).
 */
import type { API, CreateRecordsBatchOptions, MessageRecord, Reader } from '@platformatic/kafka'
import {
  crc32c,
  produceV3,
  produceV4,
  produceV5,
  produceV6,
  produceV7,
  produceV8,
  produceV9,
  produceV10,
  produceV11,
  Writer,
} from '@platformatic/kafka'

/** A Produce response as platformatic parses it (v11's type covers the older ones'). */
export type ProduceResponse = produceV11.ProduceResponse
/** What platformatic's Producer passes with each produce request. */
export type ProduceOptions = Partial<CreateRecordsBatchOptions>
export type ProduceArguments = [
  acks: number | undefined,
  timeout: number | undefined,
  topicData: MessageRecord[],
  options?: ProduceOptions,
]
/** A Produce API as platformatic's `kGetApi` answers it. */
export type ProduceApi = API<ProduceArguments, boolean | ProduceResponse>

interface ProduceVersion {
  createRequest(
    acks: number | undefined,
    timeout: number | undefined,
    topicData: MessageRecord[],
    options?: ProduceOptions,
  ): Writer
  parseResponse(correlationId: number, apiKey: number, apiVersion: number, reader: Reader): ProduceResponse
}

/** platformatic's module for each Produce version encoded here: the fallback and the response parser. */
export const VERSIONS: Readonly<Record<number, ProduceVersion>> = {
  3: produceV3,
  4: produceV4,
  5: produceV5,
  6: produceV6,
  7: produceV7,
  8: produceV8,
  9: produceV9,
  10: produceV10,
  11: produceV11,
}

/** From v9 on, requests are flexible (KIP-482): compact strings, arrays and records, tagged fields. */
export const FIRST_FLEXIBLE = 9
const NO_RESPONSE = 0
const MAGIC = 2
const TRANSACTIONAL = 0x10
/** A record batch's header: base offset and length (LOG_OVERHEAD), then 49 bytes up to the record count. */
const BATCH_HEADER = 61
const LOG_OVERHEAD = 12
const INT32_MIN = -(2 ** 31)
const INT32_MAX = 2 ** 31 - 1
/** Timestamp deltas up to this are exact doubles; further ones are zigzagged as bigints. */
const MAX_EXACT_DELTA = 2 ** 52
/** Marks a record whose timestamp delta is zigzagged as a bigint. */
const BIG_DELTA = -1

type Bytes = Uint8Array | null | undefined
/** Messages by partition, in the order platformatic writes them (its `groupByProperty`: an object's keys). */
type Partitions = Record<string, MessageRecord[]>

/** Per record of a request, in write order: its length (after the length's varint) and zigzagged delta. */
let recordLengths = new Float64Array(4096)
let timestampDeltas = new Float64Array(4096)

/**
 * The Produce request of `version` that platformatic's `createRequest` of that version writes, as a
 * Writer holding one Buffer. Like platformatic's, it gives each message without a partition
 * partition 0 and each without a timestamp the current time (a bigint): platformatic's Producer
 * sends the same messages again when it retries. Throws a RangeError for a version it does not
 * encode.
 */
export function createRequest(
  version: number,
  acks = 1,
  timeout = 0,
  topicData: MessageRecord[],
  options: ProduceOptions = {},
): Writer {
  const platformatic = VERSIONS[version]
  if (platformatic === undefined) {
    throw new RangeError(`Produce v${version} is not encoded here (v3 to v11 are): use platformatic's API.`)
  }
  const topics = isUncompressed(options) ? groupByTopic(topicData) : undefined
  if (topics === undefined) return platformatic.createRequest(acks, timeout, topicData, options)

  const flexible = version >= FIRST_FLEXIBLE
  const now = BigInt(Date.now())
  const { transactionalId } = options
  const attributes = transactionalId ? TRANSACTIONAL : 0
  const producerId = options.producerId ?? -1n
  const producerEpoch = options.producerEpoch ?? 0
  const partitionLeaderEpoch = options.partitionLeaderEpoch ?? 0
  if (recordLengths.length < topicData.length) {
    recordLengths = new Float64Array(topicData.length * 2)
    timestampDeltas = new Float64Array(topicData.length * 2)
  }

  // Sizes first: each batch's, then the request's.
  const batchSizes: number[] = []
  const timestamps: bigint[] = []
  let size = (flexible ? sizeOfCompactString(transactionalId) : 2 + byteLength(transactionalId)) + 2 + 4
  size += flexible ? sizeOfVarint(topics.length + 1) + 1 : 4
  let record = 0
  for (const [topic, partitions] of topics) {
    const nameLength = Buffer.byteLength(topic)
    size += flexible ? sizeOfVarint(nameLength + 1) + nameLength + 1 : 2 + nameLength
    size += flexible ? sizeOfVarint(partitions.length + 1) : 4
    for (const [, messages] of partitions) {
      const first = messages[0]!.timestamp ?? now
      let max = first
      let batchSize = BATCH_HEADER
      for (let i = 0; i < messages.length; i++, record++) {
        const message = messages[i]!
        message.partition ??= 0
        let timestamp = message.timestamp
        if (timestamp == null) message.timestamp = timestamp = now
        if (timestamp > max) max = timestamp
        let delta = 0
        if (timestamp !== first) {
          const ms = Number(timestamp - first)
          delta = ms <= MAX_EXACT_DELTA && ms >= -MAX_EXACT_DELTA ? zigzag(ms) : BIG_DELTA
        }
        timestampDeltas[record] = delta
        const length =
          1 +
          (delta === BIG_DELTA ? sizeOfBigVarint(bigZigzag(timestamp - first)) : sizeOfVarint(delta)) +
          sizeOfVarint(i * 2) +
          sizeOfBytes(message.key) +
          sizeOfBytes(message.value) +
          sizeOfHeaders(message.headers)
        recordLengths[record] = length
        batchSize += sizeOfVarint(length * 2) + length
      }
      timestamps.push(first, max)
      batchSizes.push(batchSize)
      size += 4 + (flexible ? sizeOfVarint(batchSize + 1) + 1 : 4) + batchSize
    }
  }

  const buffer = Buffer.allocUnsafe(size)
  let position = flexible
    ? writeCompactString(buffer, 0, transactionalId)
    : writeString(buffer, 0, transactionalId)
  position = buffer.writeInt16BE(acks, position)
  position = buffer.writeInt32BE(timeout, position)
  position = flexible
    ? writeVarint(buffer, position, topics.length + 1)
    : buffer.writeInt32BE(topics.length, position)
  record = 0
  let batch = 0
  for (const [topic, partitions] of topics) {
    position = flexible ? writeCompactString(buffer, position, topic) : writeString(buffer, position, topic)
    position = flexible
      ? writeVarint(buffer, position, partitions.length + 1)
      : buffer.writeInt32BE(partitions.length, position)
    for (const [partition, messages] of partitions) {
      const batchSize = batchSizes[batch]!
      const first = timestamps[batch * 2]!
      position = buffer.writeInt32BE(Number(partition), position)
      position = flexible
        ? writeVarint(buffer, position, batchSize + 1)
        : buffer.writeInt32BE(batchSize, position)
      const sequence = options.sequences?.getWithDefault(`${topic}:${partition}`, 0) ?? 0
      position = buffer.writeInt32BE(0, position) // base offset: 0, as an int64
      position = buffer.writeInt32BE(0, position)
      position = buffer.writeInt32BE(batchSize - LOG_OVERHEAD, position)
      position = buffer.writeInt32BE(partitionLeaderEpoch, position)
      position = buffer.writeInt8(MAGIC, position)
      const crcAt = position
      const crcFrom = position + 4
      position = buffer.writeInt16BE(attributes, crcFrom)
      position = buffer.writeInt32BE(messages.length - 1, position)
      position = buffer.writeBigInt64BE(first, position)
      position = buffer.writeBigInt64BE(timestamps[batch * 2 + 1]!, position)
      position = buffer.writeBigInt64BE(producerId, position)
      position = buffer.writeInt16BE(producerEpoch, position)
      position = buffer.writeInt32BE(sequence, position)
      position = buffer.writeInt32BE(messages.length, position)
      for (let i = 0; i < messages.length; i++, record++) {
        const message = messages[i]!
        position = writeVarint(buffer, position, recordLengths[record]! * 2)
        buffer[position++] = 0 // record attributes
        const delta = timestampDeltas[record]!
        position =
          delta === BIG_DELTA
            ? writeBigVarint(buffer, position, bigZigzag(message.timestamp! - first))
            : writeVarint(buffer, position, delta)
        position = writeVarint(buffer, position, i * 2)
        position = writeBytes(buffer, position, message.key)
        position = writeBytes(buffer, position, message.value)
        const headers = message.headers
        if (headers == null || headers.size === 0) {
          buffer[position++] = 0
        } else {
          position = writeVarint(buffer, position, headers.size * 2)
          for (const [key, value] of headers) {
            position = writeBytes(buffer, position, key)
            position = writeBytes(buffer, position, value)
          }
        }
      }
      // In a Writer's DynamicBuffer: platformatic's native crc32c copies a plain Buffer first.
      const crc = crc32c(Writer.create().append(buffer.subarray(crcFrom, position)).dynamicBuffer)
      buffer.writeUInt32BE(crc, crcAt)
      if (flexible) buffer[position++] = 0 // the partition's tagged fields
      batch++
    }
    if (flexible) buffer[position++] = 0 // the topic's tagged fields
  }
  if (flexible) buffer[position++] = 0 // the request's tagged fields
  if (position !== size) {
    throw new Error(`Produce request encoding wrote ${position} bytes of the ${size} it counted: a bug here.`)
  }

  const writer = Writer.create().append(buffer)
  if (acks === NO_RESPONSE) writer.context.noResponse = true
  return writer
}

/**
 * The messages by topic, then partition, in platformatic's order, or undefined if one of them is
 * not what its Producer sends (bytes or nothing for keys, values and header entries, a Map of
 * headers, a bigint timestamp, an int32 partition): those requests are platformatic's to encode.
 */
function groupByTopic(topicData: MessageRecord[]): [string, [string, MessageRecord[]][]][] | undefined {
  const topics: Record<string, Partitions> = Object.create(null)
  let lastTopic: string | undefined
  let partitions!: Partitions
  for (const message of topicData) {
    const { topic, partition, timestamp, headers } = message
    if (topic !== lastTopic) {
      if (typeof topic !== 'string') return undefined
      partitions = topics[topic] ??= Object.create(null) as Partitions
      lastTopic = topic
    }
    if (
      partition !== undefined &&
      !(Number.isInteger(partition) && partition >= INT32_MIN && partition <= INT32_MAX)
    )
      return undefined
    if (timestamp != null && typeof timestamp !== 'bigint') return undefined
    if (!isBytes(message.key) || !isBytes(message.value)) return undefined
    if (headers != null) {
      if (!(headers instanceof Map)) return undefined
      if (headers.size > 0)
        for (const [key, value] of headers) if (!isBytes(key) || !isBytes(value)) return undefined
    }
    ;(partitions[partition ?? 0] ??= []).push(message)
  }
  return Object.entries(topics).map(([topic, partitions]) => [topic, Object.entries(partitions)])
}

function isBytes(value: unknown): value is Bytes {
  return value == null || value instanceof Uint8Array
}

function zigzag(value: number): number {
  return value >= 0 ? value * 2 : -value * 2 - 1
}

function bigZigzag(value: bigint): bigint {
  return value >= 0n ? value << 1n : (-value << 1n) - 1n
}

/** Bytes of an unsigned varint of `value` (a non-negative integer up to 2^53). */
function sizeOfVarint(value: number): number {
  if (value < 0x80) return 1
  if (value < 0x4000) return 2
  if (value < 0x200000) return 3
  if (value < 0x10000000) return 4
  let size = 5
  for (let rest = Math.floor(value / 2 ** 35); rest > 0; rest = Math.floor(rest / 0x80)) size++
  return size
}

function sizeOfBigVarint(value: bigint): number {
  let size = 1
  for (let rest = value >> 7n; rest > 0n; rest >>= 7n) size++
  return size
}

/** A record's key, value or header entry: zigzag varint length (-1 for none), then the bytes. */
function sizeOfBytes(bytes: Bytes): number {
  return bytes == null ? 1 : sizeOfVarint(bytes.length * 2) + bytes.length
}

function sizeOfHeaders(headers: Map<Bytes, Bytes> | undefined): number {
  if (headers == null) return 1
  if (headers.size === 0) return 1
  let size = sizeOfVarint(headers.size * 2)
  for (const [key, value] of headers) size += sizeOfBytes(key) + sizeOfBytes(value)
  return size
}

function byteLength(text: string | null | undefined): number {
  return text == null ? 0 : Buffer.byteLength(text)
}

function sizeOfCompactString(text: string | null | undefined): number {
  const length = byteLength(text)
  return text == null ? 1 : sizeOfVarint(length + 1) + length
}

function writeVarint(buffer: Buffer, position: number, value: number): number {
  while (value >= 0x80) {
    buffer[position++] = (value & 0x7f) | 0x80
    value = value < 2 ** 32 ? value >>> 7 : Math.floor(value / 0x80)
  }
  buffer[position++] = value
  return position
}

function writeBigVarint(buffer: Buffer, position: number, value: bigint): number {
  while (value >= 0x80n) {
    buffer[position++] = Number(value & 0x7fn) | 0x80
    value >>= 7n
  }
  buffer[position++] = Number(value)
  return position
}

function writeBytes(buffer: Buffer, position: number, bytes: Bytes): number {
  if (bytes == null) {
    buffer[position] = 1 // zigzag(-1)
    return position + 1
  }
  const length = bytes.length
  position = writeVarint(buffer, position, length * 2)
  buffer.set(bytes, position) // faster than a byte loop, even for 20 bytes (Node 24)
  return position + length
}

/** A STRING or NULLABLE_STRING: int16 length (-1 for null), then UTF-8. */
function writeString(buffer: Buffer, position: number, text: string | null | undefined): number {
  if (text == null) return buffer.writeInt16BE(-1, position)
  const length = buffer.write(text, position + 2)
  buffer.writeInt16BE(length, position)
  return position + 2 + length
}

/** A COMPACT_(NULLABLE_)STRING: unsigned varint length + 1 (0 for null), then UTF-8. */
function writeCompactString(buffer: Buffer, position: number, text: string | null | undefined): number {
  if (text == null) {
    buffer[position] = 0
    return position + 1
  }
  position = writeVarint(buffer, position, Buffer.byteLength(text) + 1)
  return position + buffer.write(text, position)
}

/** Whether platformatic would write these options' records uncompressed (its `getCompressionAlgorithm`). */
export function isUncompressed(options: ProduceOptions | undefined): boolean {
  return (options?.compression ?? 'none') === 'none'
}
