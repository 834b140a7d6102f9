import { Partitioners, type PartitionMetadata } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { defaultPartition, murmur2, toPositive } from './partitioner.js'

/** What kafkajs' partitioner reads: every partition, each with a live leader. */
const metadata = (partitions: number): PartitionMetadata[] =>
  Array.from({ length: partitions }, (_, partitionId) => ({
    partitionId,
    leader: 0,
    partitionErrorCode: 0,
    replicas: [0],
    isr: [0],
  }))

describe('murmur2', () => {
  // Apache Kafka, clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java (testMurmur2).
  it.each([
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
  ])('hashes %j like the Java client', (input, expected) => {
    expect(murmur2(Buffer.from(input))).toBe(expected)
  })

  // kafkajs' Java-compatible murmur2 spec (defaultJava/murmur2.spec.js before 2.0, default/ since),
  // generated with the Java client. Covers every tail length (0-3 bytes).
  it.each([
    ['0', 971027396],
    ['1', -1993445489],
    ['128', -326012175],
    ['2187', -1508407203],
    ['16384', -325739742],
    ['78125', -1654490814],
    ['279936', 1462227128],
    ['823543', -2014198330],
    ['2097152', 607668903],
    ['4782969', -1182699775],
    ['10000000', -1830336757],
    ['19487171', -1603849305],
    ['35831808', -857013643],
    ['62748517', -1167431028],
    ['105413504', -381294639],
    ['170859375', -1658323481],
    ['100:48069', 1009543857],
  ])('hashes %j like kafkajs', (input, expected) => {
    expect(murmur2(Buffer.from(input))).toBe(expected)
  })

  it('hashes bytes that are not text, unsigned as Java masks them', () => {
    // Every byte value in every position of a 4-byte word and of the tail.
    const kafkajs = Partitioners.DefaultPartitioner()
    const partitionMetadata = metadata(997)
    for (let b = 0; b < 256; b++) {
      for (const key of [Buffer.from([b, 255 - b, b ^ 0x80, b, 7]), Buffer.from([b, 0xff, b])]) {
        const expected = kafkajs({ topic: 't', partitionMetadata, message: { key, value: null } })
        expect(toPositive(murmur2(key)) % 997).toBe(expected)
      }
    }
  })
})

describe('defaultPartition', () => {
  it('places keys where the Java client places them', () => {
    // toPositive(-790332482) = 1357151166; 1357151166 % 50 = 16.
    expect(defaultPartition(Buffer.from('foobar'), 50)).toBe(16)
    expect(toPositive(-790332482)).toBe(1357151166)
  })

  it('agrees with kafkajs DefaultPartitioner on many keys and partition counts', () => {
    const kafkajs = Partitioners.DefaultPartitioner()
    for (const partitions of [1, 2, 3, 7, 12, 64]) {
      const partitionMetadata = metadata(partitions)
      for (let i = 0; i < 500; i++) {
        const key = Buffer.from(`user-${i}-${'x'.repeat(i % 9)}`)
        const expected = kafkajs({ topic: 't', partitionMetadata, message: { key, value: null } })
        expect(defaultPartition(key, partitions)).toBe(expected)
      }
    }
  })

  it('spreads records without a key evenly, round-robin', () => {
    const counts = [0, 0, 0]
    for (let i = 0; i < 30; i++) counts[defaultPartition(null, 3)]!++
    expect(counts).toEqual([10, 10, 10])
  })
})
