import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Store } from '@mephisto/core'
import { App, defaultPartition, memoryStore } from '@mephisto/core'
import { rocksdbStore } from '@mephisto/store-rocksdb'
import { Kafka, logLevel } from 'kafkajs'

export interface RecoveryBenchResult {
  keys: number
  tail: number
  /** Restart on the RocksDB state it left: replays only the changelog tail. */
  rocksdbMs: number
  rocksdbReplayed: number
  /** Restart with no local state: replays the whole changelog. */
  fullMs: number
  fullReplayed: number
  /** The table restore alone (recovery inside the partition assignment). */
  rocksdbRestoreMs: number
  fullRestoreMs: number
  /** Restore time, full replay over RocksDB. */
  ratio: number
  /** start() to ready (connect, group join, restore), full replay over RocksDB. */
  startRatio: number
  valuesMatch: boolean
}

const PARTITIONS = 4

/** An app whose agent writes `table[key] = value` for every record of its topic. */
function tableApp(id: string, topic: string, brokers: string[], store: Store) {
  const app = new App({ id, broker: brokers, store, logger: 'warn', web: false, commitIntervalMs: 1000 })
  const source = app.topic<string, number>(topic, { partitions: PARTITIONS })
  const table = app.table<string, number>('values', { partitions: PARTITIONS })
  app.agent(source, async (stream) => {
    for await (const [k, v] of stream.items()) table.set(k, v)
  })
  let replayed = 0
  let restoreMs = 0
  app.sensors.add({
    onRecoveryProgress: (_t, _p, done, total) => {
      if (done === total) replayed += total
    },
    // Table recovery runs inside the assignment: its duration is the restore time.
    onAssignmentStart: () => performance.now(),
    onAssignmentCompleted: (started) => {
      restoreMs += performance.now() - (started as number)
    },
  })
  return { app, source, table, replayed: () => replayed, restoreMs: () => restoreMs }
}

async function produce(
  brokers: string[],
  topic: string,
  from: number,
  to: number,
  value: (i: number) => number,
) {
  const producer = new Kafka({ clientId: 'bench-recovery', brokers, logLevel: logLevel.ERROR }).producer()
  await producer.connect()
  for (let i = from; i < to; i += 10_000) {
    const messages = []
    for (let j = i; j < Math.min(to, i + 10_000); j++)
      messages.push({ key: `key-${j}`, value: String(value(j)) })
    await producer.send({ topic, messages })
  }
  await producer.disconnect()
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 200))
  }
}

/**
 * Restart of a worker holding a `keys`-key table: on the RocksDB state it left (replays only
 * the `tail` records written to the changelog after it stopped) against a restart with no
 * local state (replays the whole changelog), on the same broker in one run.
 */
export async function recoveryBench(
  brokers: string[],
  keys: number,
  tail: number,
): Promise<RecoveryBenchResult> {
  const id = `bench-recovery-${Date.now().toString(36)}`
  const topic = `${id}-input`
  const dir = mkdtempSync(join(tmpdir(), 'mephisto-bench-rocksdb-'))
  try {
    const admin = new Kafka({ clientId: 'bench-recovery', brokers, logLevel: logLevel.ERROR }).admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true })
    await admin.disconnect()

    // 1. Build the table: every key once, through the app, on RocksDB.
    const first = tableApp(id, topic, brokers, rocksdbStore({ path: dir }))
    await first.app.start()
    await produce(brokers, topic, 0, keys, (i) => i)
    const changelog = `${id}-values-changelog`
    const ends = async (): Promise<number> => {
      let n = 0
      for (const v of (await first.app.worker!.transport.admin.endOffsets(changelog)).values()) n += v
      return n
    }
    await waitFor(async () => (await ends()) >= keys, 600_000)
    await first.app.stop()

    // 2. The tail: records another worker would have written meanwhile, straight to the changelog.
    const producer = new Kafka({ clientId: 'bench-recovery', brokers, logLevel: logLevel.ERROR }).producer()
    await producer.connect()
    const messages = []
    for (let j = 0; j < tail; j++)
      messages.push({
        key: `key-${j}`,
        value: String(-j),
        // The partition the key's table shard lives in (Kafka's default partitioner, as the input's).
        partition: defaultPartition(Buffer.from(`key-${j}`), PARTITIONS),
      })
    await producer.send({ topic: changelog, messages })
    await producer.disconnect()

    // 3. Restart on the RocksDB state: replays the tail only.
    const second = tableApp(id, topic, brokers, rocksdbStore({ path: dir }))
    const t0 = performance.now()
    await second.app.start()
    const rocksdbMs = performance.now() - t0
    let valuesMatch =
      (await second.table.get('key-1')) === -1 && (await second.table.get(`key-${keys - 1}`)) === keys - 1
    const rocksdbReplayed = second.replayed()
    const rocksdbRestoreMs = second.restoreMs()
    await second.app.stop()

    // 4. Restart with no local state: the whole changelog.
    const third = tableApp(id, topic, brokers, memoryStore())
    const t1 = performance.now()
    await third.app.start()
    const fullMs = performance.now() - t1
    valuesMatch &&=
      (await third.table.get('key-1')) === -1 && (await third.table.get(`key-${keys - 1}`)) === keys - 1
    const fullReplayed = third.replayed()
    const fullRestoreMs = third.restoreMs()
    await third.app.stop()
    return {
      keys,
      tail,
      rocksdbMs,
      rocksdbReplayed,
      fullMs,
      fullReplayed,
      rocksdbRestoreMs,
      fullRestoreMs,
      ratio: fullRestoreMs / rocksdbRestoreMs,
      startRatio: fullMs / rocksdbMs,
      valuesMatch,
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
