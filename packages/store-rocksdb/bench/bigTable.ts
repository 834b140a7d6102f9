// A table larger than the cache: writes N keys through the store the way recovery does
// (batches with changelog offsets), reads a random sample back, reopens it as a restarted
// worker would, and reports time and peak RSS. Run by hand, never as a timed test:
//
//   pnpm --filter @mephisto/store-rocksdb bench:big-table [--keys 2000000] [--cache 10000]
//     [--partitions 4] [--batch 10000] [--samples 20000] [--store rocksdb|memory] [--path dir]
//     [--block-cache bytes]   (rocksdb.blockCacheSize; 0 turns RocksDB's block cache off)
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { memoryStore, type Store, type TableStore } from '@mephisto/core'
import { rocksdbStore } from '../src/index.js'

interface Row {
  id: number
  hits: number
  user: string
}

const { values: args } = parseArgs({
  options: {
    keys: { type: 'string', default: '2000000' },
    cache: { type: 'string', default: '10000' },
    partitions: { type: 'string', default: '4' },
    batch: { type: 'string', default: '10000' },
    samples: { type: 'string', default: '20000' },
    store: { type: 'string', default: 'rocksdb' },
    path: { type: 'string' },
    'block-cache': { type: 'string' },
  },
})
const keys = Number(args.keys)
const cacheSize = Number(args.cache)
const partitions = Number(args.partitions)
const batchSize = Number(args.batch)
const samples = Number(args.samples)
const path = args.path ?? mkdtempSync(join(tmpdir(), 'mephisto-big-table-'))

const row = (i: number): Row => ({ id: i, hits: (i * 7919) % 100_000, user: `user-${i}` })
const keyOf = (i: number): string => `user-${i}`
const partitionOf = (i: number): number => i % partitions

let peakRss = 0
const sampleRss = (): void => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss)
}
const sampler = setInterval(sampleRss, 25)
const mb = (b: number): string => `${(b / 1024 / 1024).toFixed(0)} MB`
const rows: [string, string][] = []
const phase = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
  const t0 = performance.now()
  const out = await fn()
  sampleRss()
  rows.push([
    name,
    `${((performance.now() - t0) / 1000).toFixed(2)} s   rss ${mb(process.memoryUsage().rss)}`,
  ])
  return out
}

function makeStore(): Store {
  const blockCacheSize = args['block-cache'] === undefined ? undefined : Number(args['block-cache'])
  return args.store === 'memory'
    ? memoryStore()
    : rocksdbStore({ path, cacheSize, rocksdb: { blockCacheSize } })
}
const spec = {
  appId: 'bench',
  table: 'big',
  partitions,
  encode: (v: Row) => Buffer.from(JSON.stringify(v)),
  decode: (b: Buffer) => JSON.parse(b.toString()) as Row,
}

/** Bytes of every file under `dir` (table files, logs, manifests). */
function sizeOnDisk(dir: string): number {
  let n = 0
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) n += statSync(join(e.parentPath, e.name)).size
  return n
}

async function checkSample(ts: TableStore<Row>, n: number): Promise<number> {
  let wrong = 0
  // Half uniform (mostly cache misses), half from a 5 000-key hot set (cache hits).
  for (let s = 0; s < n; s++) {
    const i = s % 2 === 0 ? Math.floor(Math.random() * keys) : Math.floor(Math.random() * 5_000)
    const v = await ts.get(partitionOf(i), keyOf(i))
    if (v?.hits !== row(i).hits || v.user !== keyOf(i)) wrong++
  }
  return wrong
}

sampleRss()
const baseRss = process.memoryUsage().rss
const ts = await makeStore().open<Row>(spec)
let offset = 0
await phase(`write ${keys.toLocaleString('en')} keys`, async () => {
  const pending = Array.from({ length: partitions }, () => [] as { key: string; value: Row }[])
  const offsets = new Array<number>(partitions).fill(-1)
  for (let i = 0; i < keys; i++) {
    const p = partitionOf(i)
    const batch = pending[p]!
    batch.push({ key: keyOf(i), value: row(i) })
    offsets[p] = offset++
    if (batch.length >= batchSize) {
      await ts.write(p, batch.splice(0), offsets[p]!)
    }
  }
  for (let p = 0; p < partitions; p++) if (pending[p]!.length > 0) await ts.write(p, pending[p]!, offsets[p]!)
})
const wrong1 = await phase(`${samples.toLocaleString('en')} sampled reads`, () => checkSample(ts, samples))
const tail = await phase('getMany of 1 000 keys x 20', async () => {
  let wrong = 0
  for (let r = 0; r < 20; r++) {
    const ids = Array.from(
      { length: 1000 },
      () => Math.floor(Math.random() * (keys / partitions)) * partitions,
    )
    const got = await ts.getMany(0, ids.map(keyOf))
    wrong += got.filter((v, j) => v?.id !== ids[j]).length
  }
  return wrong
})
let wrong2 = 0
let applied = -1
let diskBytes = 0
if (args.store !== 'memory') {
  await phase('close', () => ts.close())
  diskBytes = sizeOnDisk(path)
  rows.push(['on disk after close', mb(diskBytes)])
  const reopened = await makeStore().open<Row>(spec)
  applied = await phase('reopen (a restart: no replay)', async () => {
    let max = -1
    for (let p = 0; p < partitions; p++) max = Math.max(max, await reopened.appliedOffset(p))
    return max
  })
  wrong2 = await phase(`${samples.toLocaleString('en')} sampled reads after reopen`, () =>
    checkSample(reopened, samples),
  )
  await reopened.close()
} else {
  await ts.close()
}
clearInterval(sampler)

const result = {
  store: args.store,
  keys,
  cacheSize,
  partitions,
  wrongValues: wrong1 + wrong2 + tail,
  lastAppliedOffset: applied,
  baseRssMB: Math.round(baseRss / 1024 / 1024),
  peakRssMB: Math.round(peakRss / 1024 / 1024),
  diskMB: Math.round(diskBytes / 1024 / 1024),
  node: process.version,
}
console.log(
  `\nbig table: ${args.store}, ${keys.toLocaleString('en')} keys, cache ${cacheSize.toLocaleString('en')}, ${partitions} partitions`,
)
for (const [name, what] of rows) console.log(`  ${name.padEnd(40)} ${what}`)
console.log(`  ${'peak RSS'.padEnd(40)} ${mb(peakRss)} (at start ${mb(baseRss)})`)
console.log(`  ${'wrong values'.padEnd(40)} ${result.wrongValues}`)
console.log(JSON.stringify(result))
if (!args.path) rmSync(path, { recursive: true, force: true })
if (result.wrongValues > 0 || (args.store !== 'memory' && applied !== keys - 1)) process.exitCode = 1
