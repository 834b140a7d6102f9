/**
 * Kafka's default partitioner, byte for byte: the Java client's `Utils.murmur2` and kafkajs'
 * `Partitioners.DefaultPartitioner` (formerly `JavaCompatiblePartitioner`). Matching them matters:
 * a key must land on the same partition whether a Mephisto app, a Java service or kafkajs wrote
 * it, or co-partitioned tables would read the wrong shard.
 */

const SEED = 0x9747b28c
// Mixing constants of MurmurHash2; not magic, they just mix well.
const M = 0x5bd1e995

/**
 * MurmurHash2 of `buf` as the Java client computes it: a signed 32-bit integer (the same value
 * `Utils.murmur2(byte[])` returns). Use {@link toPositive} before taking a modulo.
 */
export function murmur2(buf: Buffer): number {
  const length = buf.length
  let h = SEED ^ length
  const whole = length & ~3
  for (let i = 0; i < whole; i += 4) {
    let k = buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24)
    k = Math.imul(k, M)
    k ^= k >>> 24
    k = Math.imul(k, M)
    h = Math.imul(h, M) ^ k
  }
  // The Java switch falls through from 3 to 1; spelled out to keep the linter's fallthrough rule.
  const rest = length & 3
  if (rest === 3) h ^= buf[whole + 2]! << 16
  if (rest >= 2) h ^= buf[whole + 1]! << 8
  if (rest >= 1) {
    h ^= buf[whole]!
    h = Math.imul(h, M)
  }
  h ^= h >>> 13
  h = Math.imul(h, M)
  h ^= h >>> 15
  return h | 0
}

/**
 * Kafka's `Utils.toPositive`: clears the sign bit. Not `Math.abs`, which would place negative
 * hashes on other partitions than Java does.
 */
export function toPositive(n: number): number {
  return n & 0x7fffffff
}

let roundRobin = 0

/**
 * The partition Kafka's default partitioner picks for `key` among `partitions`:
 * `toPositive(murmur2(key)) % partitions`. Records without a key are spread round-robin.
 */
export function defaultPartition(key: Buffer | null, partitions: number): number {
  if (key === null) {
    const partition = toPositive(roundRobin) % partitions
    roundRobin = (roundRobin + 1) | 0
    return partition
  }
  return toPositive(murmur2(key)) % partitions
}
