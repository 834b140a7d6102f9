import type { Connection, MessageRecord } from '@platformatic/kafka'
import {
  Base,
  kGetApi,
  NumericMap,
  produceV3,
  produceV4,
  produceV5,
  produceV6,
  produceV7,
  produceV8,
  produceV9,
  produceV10,
  produceV11,
  Reader,
  readRecordsBatch,
} from '@platformatic/kafka'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { EncodingProducer, produceApi } from './encodingProducer.js'
import type { ProduceApi, ProduceOptions } from './produceRequest.js'
import { createRequest } from './produceRequest.js'

/** platformatic's module of each Produce version, the reference every request is compared with. */
const PLATFORMATIC = {
  3: produceV3,
  4: produceV4,
  5: produceV5,
  6: produceV6,
  7: produceV7,
  8: produceV8,
  9: produceV9,
  10: produceV10,
  11: produceV11,
} as const
const VERSIONS = [3, 4, 5, 6, 7, 8, 9, 10, 11] as const
/** What Date.now() answers while a test runs: the timestamp of every message sent without one. */
const NOW = 1_750_000_000_123

/** A message as platformatic's Producer hands it over, and what it does not check: nulls. */
interface Message {
  topic: string
  partition?: number
  key?: Uint8Array | null
  value: Uint8Array | null
  headers?: Map<Uint8Array, Uint8Array | null>
  timestamp?: bigint | null
}

function bytes(text: string): Buffer {
  return Buffer.from(text)
}

/** Pseudo-random bytes of `length`, the same on every run. */
function filled(length: number, seed = length): Buffer {
  const out = Buffer.allocUnsafe(length)
  let x = seed * 2654435761 + 1
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    out[i] = x >>> 24
  }
  return out
}

/** Copies of messages as platformatic's Producer builds them (each createRequest mutates its own). */
function copy(messages: readonly Message[]): MessageRecord[] {
  return messages.map((m) => ({ ...m, headers: m.headers && new Map(m.headers) })) as MessageRecord[]
}

/** The index of the first byte where `a` and `b` differ, or -1. */
function firstDifference(a: Buffer, b: Buffer): number {
  const length = Math.min(a.length, b.length)
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return i
  return a.length === b.length ? -1 : length
}

/**
 * Encodes `messages` with platformatic's createRequest of `version` and with ours, and asserts the
 * same bytes, the same no-response flag and the same normalised messages (partition, timestamp).
 */
function expectSameRequest(
  version: (typeof VERSIONS)[number],
  acks: number,
  timeout: number,
  messages: readonly Message[],
  options: ProduceOptions = {},
): Buffer {
  const theirMessages = copy(messages)
  const ourMessages = copy(messages)
  const theirs = PLATFORMATIC[version].createRequest(acks, timeout, theirMessages, { ...options })
  const ours = createRequest(version, acks, timeout, ourMessages, { ...options })
  const expected = theirs.buffer
  const actual = ours.buffer
  const at = firstDifference(expected, actual)
  expect(
    at,
    `Produce v${version}: ${actual.length} bytes against platformatic's ${expected.length}, first differing at ${at}`,
  ).toBe(-1)
  expect(ours.context.noResponse).toBe(theirs.context.noResponse)
  expect(ourMessages.map((m) => [m.partition, m.timestamp])).toEqual(
    theirMessages.map((m) => [m.partition, m.timestamp]),
  )
  return actual
}

function expectSameRequests(
  acks: number,
  timeout: number,
  messages: readonly Message[],
  options: ProduceOptions = {},
): void {
  for (const version of VERSIONS) expectSameRequest(version, acks, timeout, messages, options)
}

function sequences(entries: Record<string, number>): NumericMap {
  const map = new NumericMap()
  for (const [key, value] of Object.entries(entries)) map.set(key, value)
  return map
}

/** The records of the (only) batch of a one-partition request of version 11. */
function decodeOnlyBatch(request: Buffer): ReturnType<typeof readRecordsBatch> {
  const reader = Reader.from(request)
  reader.readNullableString() // transactional id
  reader.readInt16()
  reader.readInt32()
  reader.readUnsignedVarInt() // topics + 1
  reader.readString()
  reader.readUnsignedVarInt() // partitions + 1
  reader.readInt32()
  reader.readUnsignedVarInt() // batch length + 1
  return readRecordsBatch(reader)
}

beforeEach(() => {
  vi.useFakeTimers({ now: NOW, toFake: ['Date'] })
})
afterEach(() => {
  vi.useRealTimers()
  vi.restoreAllMocks()
})

describe('createRequest writes the bytes platformatic writes (Produce v3 to v11)', () => {
  it('for one record without a key, headers or a timestamp', () => {
    expectSameRequests(1, 30_000, [{ topic: 'events', partition: 0, value: bytes('hello') }])
  })

  it('for null, missing and empty keys and values (tombstones)', () => {
    expectSameRequests(-1, 5000, [
      { topic: 't', partition: 0, key: bytes('k1'), value: bytes('v1') },
      { topic: 't', partition: 0, key: null, value: bytes('no key') },
      { topic: 't', partition: 0, value: bytes('key undefined') },
      { topic: 't', partition: 0, key: bytes('tombstone'), value: null },
      { topic: 't', partition: 0, key: Buffer.alloc(0), value: Buffer.alloc(0) },
      {
        topic: 't',
        partition: 0,
        key: new Uint8Array([1, 2, 3]) as Buffer,
        value: new Uint8Array(0) as Buffer,
      },
    ])
  })

  it('for headers in a Map, empty, null and many', () => {
    const many = new Map<Buffer, Buffer>()
    for (let i = 0; i < 70; i++) many.set(bytes(`h${i}`), filled(i))
    expectSameRequests(1, 0, [
      { topic: 't', partition: 1, value: bytes('a'), headers: new Map([[bytes('trace'), bytes('abc')]]) },
      { topic: 't', partition: 1, value: bytes('b'), headers: new Map() },
      {
        topic: 't',
        partition: 1,
        value: bytes('c'),
        headers: new Map<Buffer, Buffer>([
          [bytes('empty'), Buffer.alloc(0)],
          [bytes('null'), null as unknown as Buffer],
          [Buffer.alloc(0), bytes('no name')],
        ]),
      },
      { topic: 't', partition: 1, value: bytes('d'), headers: many },
    ])
  })

  it('for explicit timestamps, out of order and up to 2^31 ms apart, and missing or null ones', () => {
    const base = BigInt(NOW) - 1000n
    expectSameRequests(1, 1000, [
      { topic: 't', partition: 0, value: bytes('1'), timestamp: base },
      { topic: 't', partition: 0, value: bytes('2'), timestamp: base - 5n },
      { topic: 't', partition: 0, value: bytes('3'), timestamp: base + 86_400_000n * 24n },
      { topic: 't', partition: 0, value: bytes('4'), timestamp: base - 86_400_000n * 24n },
      { topic: 't', partition: 0, value: bytes('5'), timestamp: base + 2n ** 31n - 1n },
      { topic: 't', partition: 0, value: bytes('6'), timestamp: base - 2n ** 31n },
      { topic: 't', partition: 0, value: bytes('7') },
      { topic: 't', partition: 0, value: bytes('8'), timestamp: null },
      { topic: 't', partition: 1, value: bytes('first without one') },
      { topic: 't', partition: 1, value: bytes('then one'), timestamp: base },
      { topic: 't', partition: 2, value: bytes('null first'), timestamp: null },
      { topic: 't', partition: 2, value: bytes('then one'), timestamp: base },
    ])
  })

  it('for several topics and partitions in one request, in platformatic order', () => {
    const messages: Message[] = []
    // Topic names that are array indexes come first in platformatic's grouping, in numeric order.
    const topics = ['orders', '42', 'tópico-ü', '7', 'a.b_c-d']
    for (let i = 0; i < 60; i++) {
      const partition = [3, 0, 11, 2, undefined][i % 5]
      messages.push({
        topic: topics[(i * 7) % topics.length]!,
        ...(partition === undefined ? {} : { partition }),
        key: bytes(`key-${i}`),
        value: filled(10 + i),
        ...(i % 3 === 0 ? { timestamp: BigInt(NOW - i * 1000) } : {}),
      })
    }
    expectSameRequests(-1, 30_000, messages)
  })

  it('for idempotent producers: producer id, epoch and first sequences per partition', () => {
    const messages: Message[] = []
    for (let i = 0; i < 12; i++)
      messages.push({ topic: i % 2 ? 'x' : 'y', partition: i % 3, key: bytes(`${i}`), value: bytes('v') })
    expectSameRequests(-1, 30_000, messages, {
      producerId: 123_456_789_012n,
      producerEpoch: 7,
      sequences: sequences({ 'x:0': 5, 'x:1': 2_000_000_000, 'y:2': 17 }),
    })
  })

  it('for transactional producers, and a partition leader epoch', () => {
    const messages: Message[] = [
      { topic: 'out', partition: 0, key: bytes('a'), value: bytes('1') },
      { topic: 'out', partition: 1, key: bytes('b'), value: bytes('2') },
    ]
    const idempotent = { producerId: 9n, producerEpoch: 1, sequences: sequences({ 'out:1': 3 }) }
    expectSameRequests(-1, 60_000, messages, { ...idempotent, transactionalId: 'mephisto-worker-0' })
    expectSameRequests(-1, 60_000, messages, { ...idempotent, transactionalId: 'wörker-ß-事务' })
    expectSameRequests(-1, 60_000, messages, { ...idempotent, transactionalId: '' })
    expectSameRequests(-1, 60_000, messages, { ...idempotent, transactionalId: null })
    expectSameRequests(1, 60_000, messages, { partitionLeaderEpoch: 12 })
  })

  it('for acks 0 (no response), 1 and -1', () => {
    const messages: Message[] = [{ topic: 't', partition: 0, key: bytes('k'), value: bytes('v') }]
    for (const acks of [0, 1, -1]) expectSameRequests(acks, 1500, messages)
    expectSameRequests(1, 1500, []) // no messages: platformatic's Producer never sends it, but the bytes agree
    expect(createRequest(11, 0, 0, copy(messages)).context.noResponse).toBe(true)
    expect(createRequest(11, 1, 0, copy(messages)).context.noResponse).toBeUndefined()
  })

  it('for values over 64 KiB and lengths beyond two-byte varints', () => {
    expectSameRequests(1, 0, [
      { topic: 'big', partition: 0, key: filled(16_383), value: filled(16_384) },
      { topic: 'big', partition: 0, key: bytes('k'), value: filled(70_000) },
      { topic: 'big', partition: 0, key: bytes('k'), value: filled(1_048_576 + 3) },
      {
        topic: 'big',
        partition: 0,
        value: bytes('v'),
        headers: new Map([[bytes('h'), filled(65_537)]]),
      },
    ])
  })

  it('for more than 127 and 8191 records in a partition (multi-byte offset deltas and counts)', () => {
    const messages: Message[] = []
    for (let i = 0; i < 9000; i++)
      messages.push({ topic: 'many', partition: i % 2, key: bytes(`${i}`), value: filled(i % 100) })
    for (let i = 0; i < 200; i++) messages.push({ topic: `t${i}`, partition: i, value: bytes('one') })
    expectSameRequests(1, 30_000, messages)
  })

  it('for many random requests', () => {
    let x = 12345
    const random = (n: number): number => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0
      return Math.floor((x / 2 ** 32) * n) // the high bits: an LCG's low bits cycle
    }
    const lengths = [0, 1, 20, 63, 64, 80, 127, 128, 8191, 8192, 20_000]
    for (let request = 0; request < 150; request++) {
      const messages: Message[] = []
      const count = 1 + random(request % 10 === 0 ? 600 : 40)
      for (let i = 0; i < count; i++) {
        const headers = random(4) === 0 ? undefined : new Map<Buffer, Buffer>()
        for (let h = random(4); headers && h > 0; h--)
          headers.set(filled(random(12), h), filled(lengths[random(8)]!))
        messages.push({
          topic: ['a', 'b', '3', 'ü'][random(4)]!,
          ...(random(5) === 0 ? {} : { partition: random(6) }),
          ...(random(4) === 0
            ? {}
            : { key: random(6) === 0 ? null : filled(lengths[random(lengths.length)]!) }),
          value: random(8) === 0 ? null : filled(lengths[random(lengths.length)]!),
          ...(headers ? { headers } : {}),
          ...(random(3) === 0 ? {} : { timestamp: BigInt(NOW + random(200_000_000) - 100_000_000) }),
        })
      }
      const options: ProduceOptions = random(2)
        ? {
            producerId: BigInt(random(1_000_000)),
            producerEpoch: random(30),
            sequences: sequences({ 'a:1': random(1000) }),
          }
        : {}
      if (random(3) === 0) options.transactionalId = `txn-${random(100)}`
      expectSameRequest(
        VERSIONS[random(VERSIONS.length)]!,
        [0, 1, -1][random(3)]!,
        random(60_000),
        messages,
        options,
      )
    }
  })

  it('hands compressed requests and messages it does not expect to platformatic', () => {
    const messages: Message[] = [
      { topic: 't', partition: 0, key: bytes('k'), value: filled(300), timestamp: BigInt(NOW) },
      { topic: 't', partition: 0, key: bytes('k'), value: filled(300), timestamp: BigInt(NOW + 1) },
    ]
    expectSameRequests(1, 0, messages, { compression: 'gzip' })
    // A number timestamp after the first: platformatic makes it a bigint.
    expectSameRequests(1, 0, [messages[0]!, { ...messages[1]!, timestamp: NOW + 2 } as unknown as Message])
    expect(() => createRequest(12, 1, 0, copy(messages))).toThrow(/Produce v12 is not encoded here/)
  })
})

describe('timestamp deltas of 2^31 ms and more', () => {
  it('are written as Kafka varlongs, which platformatic 2.12.1 gets wrong', () => {
    const base = 1_700_000_000_000n
    const deltas = [2n ** 31n, 86_400_000n * 30n, -(2n ** 31n) - 1n, -(86_400_000n * 365n), 2n ** 60n]
    const messages: Message[] = [{ topic: 't', partition: 0, value: bytes('first'), timestamp: base }]
    for (const delta of deltas)
      messages.push({ topic: 't', partition: 0, value: bytes('far'), timestamp: base + delta })

    const ours = decodeOnlyBatch(createRequest(11, 1, 0, copy(messages)).buffer)
    expect(ours.records.map((r) => r.timestampDelta)).toEqual([0n, ...deltas])
    expect(ours.maxTimestamp).toBe(base + 2n ** 60n)

    const theirs = decodeOnlyBatch(produceV11.createRequest(1, 0, copy(messages.slice(0, 3))).buffer)
    expect(
      theirs.records.map((r) => r.timestampDelta),
      'platformatic now writes far timestamps right: the two encoders should agree again (update the doc comment)',
    ).not.toEqual([0n, ...deltas.slice(0, 2)])
  })
})

describe('the Produce API that EncodingProducer gets', () => {
  interface Sent {
    apiKey: number
    apiVersion: number
    payload: Buffer
    parser: unknown
    requestTags: boolean
    responseTags: boolean
  }

  /** Calls `api` on a connection that records what it would send and answers `true`. */
  async function send(api: ProduceApi, messages: readonly Message[], options: ProduceOptions): Promise<Sent> {
    let sent: Promise<Sent> | undefined
    const connection = {
      send(
        apiKey: number,
        apiVersion: number,
        createPayload: () => { buffer: Buffer } | Promise<{ buffer: Buffer }>,
        parser: unknown,
        requestTags: boolean,
        responseTags: boolean,
        callback: (error: Error | null, response: unknown) => void,
      ): void {
        sent = Promise.resolve(createPayload()).then((payload) => ({
          apiKey,
          apiVersion,
          payload: payload.buffer,
          parser,
          requestTags,
          responseTags,
        }))
        callback(null, true)
      },
    } as unknown as Connection
    const answer = await new Promise((resolve, reject) =>
      api(connection, -1, 30_000, copy(messages), options, (error, response) =>
        error ? reject(error) : resolve(response),
      ),
    )
    expect(answer).toBe(true)
    return sent!
  }

  const messages: Message[] = [
    { topic: 't', partition: 0, key: bytes('k'), value: filled(200), timestamp: BigInt(NOW) },
    { topic: 'u', partition: 2, value: bytes('v') },
  ]

  it('sends what platformatic sends, with its response parser and request headers, for each version', async () => {
    for (const version of VERSIONS) {
      const platformatic = PLATFORMATIC[version].api as ProduceApi
      const api = produceApi(platformatic)
      expect(api).not.toBe(platformatic)
      expect([api.key, api.version]).toEqual([0, version])
      for (const options of [{}, { compression: 'none' as const }, { compression: 'gzip' as const }]) {
        const ours = await send(api, messages, options)
        const theirs = await send(platformatic, messages, options)
        expect(ours).toEqual(theirs)
      }
    }
  })

  it('is the Producer’s Produce API; every other API stays platformatic’s', async () => {
    const platformaticApis: Record<string, unknown> = { Produce: produceV11.api, Metadata: { version: 12 } }
    type GetApi = (name: string, callback: (error: Error | null, api?: unknown) => void) => void
    const base = Base.prototype as unknown as { [kGetApi]: GetApi }
    vi.spyOn(base, kGetApi).mockImplementation((name, callback) => callback(null, platformaticApis[name]))
    const producer = new EncodingProducer({
      clientId: 'produce-request-test',
      bootstrapBrokers: ['127.0.0.1:9'],
    })
    const get = (name: string): Promise<unknown> =>
      new Promise((resolve, reject) =>
        (producer[kGetApi] as GetApi)(name, (error, api) => (error ? reject(error) : resolve(api))),
      )
    try {
      expect(await get('Produce')).toBe(produceApi(produceV11.api as ProduceApi))
      expect(await get('Metadata')).toBe(platformaticApis.Metadata)
    } finally {
      await producer.close()
    }
  })
})
