import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { rocksdbStore } from '../src/index.js'

const path = mkdtempSync(join(tmpdir(), 'mephisto-rocksdb-big-'))
afterAll(() => rmSync(path, { recursive: true, force: true }))

// The 2,000,000-key run with RSS figures is bench/bigTable.ts; this checks correctness at a size
// where the table is 200 times the cache, so almost every read misses it.
it('serves a table far larger than its cache, before and after a reopen', async () => {
  const keys = 200_000
  const spec = {
    appId: 'big',
    table: 't',
    partitions: 2,
    encode: (v: number) => Buffer.from(String(v)),
    decode: (b: Buffer) => Number(b.toString()),
  }
  const value = (i: number): number => (i * 7919) % 100_003
  const ts = await rocksdbStore({ path, cacheSize: 1_000 }).open(spec)
  for (let start = 0; start < keys; start += 10_000) {
    const p = (start / 10_000) % 2
    const batch = Array.from({ length: 10_000 }, (_, j) => ({
      key: `k${start + j}`,
      value: value(start + j),
    }))
    await ts.write(p, batch, start + 9_999)
  }
  const partitionOf = (i: number): number => Math.floor(i / 10_000) % 2
  const sample = Array.from({ length: 5_000 }, () => Math.floor(Math.random() * keys))
  for (const i of sample) expect(await ts.get(partitionOf(i), `k${i}`)).toBe(value(i))
  await ts.close()

  const again = await rocksdbStore({ path, cacheSize: 1_000 }).open(spec)
  expect(await again.appliedOffset(0)).toBe(keys - 10_000 - 1)
  expect(await again.appliedOffset(1)).toBe(keys - 1)
  const got = await again.getMany(
    0,
    sample.filter((i) => partitionOf(i) === 0).map((i) => `k${i}`),
  )
  expect(got).toEqual(sample.filter((i) => partitionOf(i) === 0).map(value))
  let n = 0
  for await (const _ of again.entries(1)) n++
  expect(n).toBe(keys / 2)
  await again.close()
}, 60_000)
