import type { Store, TableStore, TableStoreSpec } from '@mephisto/core'
import { afterEach, describe, expect, it } from 'vitest'

interface Value {
  n: number
  label?: string
  tags?: string[]
}

/** Options for stores whose semantics legitimately differ. */
export interface ConformanceOptions {
  /** Data survives `close()` and a fresh `open` on a new Store (persistent stores). Default false. */
  persistent?: boolean
}

/**
 * The behaviour every `Store` must have, as TableState relies on it: reads, batched writes
 * with deletes, the applied changelog offset per partition, entries, release (data and offset
 * are kept, so a returning partition replays only the changelog tail), clear and close.
 *
 * `makeStore` returns a Store over fresh state each call; with `persistent`, `reopen` returns
 * another Store over the same state as the last `makeStore`.
 */
export function runStoreConformance(
  name: string,
  makeStore: () => Store | Promise<Store>,
  options: ConformanceOptions & { reopen?: () => Store | Promise<Store> } = {},
): void {
  describe(`Store conformance: ${name}`, () => {
    const open: TableStore<Value>[] = []

    async function table(store?: Store, tableName = 'counts', partitions = 4): Promise<TableStore<Value>> {
      const s = store ?? (await makeStore())
      const ts = await s.open(spec(tableName, partitions))
      open.push(ts)
      return ts
    }

    afterEach(async () => {
      for (const ts of open.splice(0)) await ts.close()
    })

    it('reads nothing from an empty partition, and -1 as its applied offset', async () => {
      const ts = await table()
      expect(await ts.get(0, 'missing')).toBeUndefined()
      expect(await ts.getMany(1, ['a', 'b'])).toEqual([undefined, undefined])
      expect(await ts.appliedOffset(2)).toBe(-1)
      expect(await collect(ts.entries(3))).toEqual([])
    })

    it('applies puts and deletes of a batch, and records its offset', async () => {
      const ts = await table()
      await ts.write(
        0,
        [
          { key: 'a', value: { n: 1 } },
          { key: 'b', value: { n: 2 } },
          { key: 'c', value: { n: 3 } },
        ],
        10,
      )
      await ts.write(
        0,
        [
          { key: 'b', value: undefined },
          { key: 'c', value: { n: 30 } },
        ],
        12,
      )
      expect(await ts.get(0, 'a')).toEqual({ n: 1 })
      expect(await ts.get(0, 'b')).toBeUndefined()
      expect(await ts.getMany(0, ['c', 'b', 'a', 'zz'])).toEqual([{ n: 30 }, undefined, { n: 1 }, undefined])
      expect(await ts.appliedOffset(0)).toBe(12)
    })

    it('keeps partitions apart: data, offsets and entries', async () => {
      const ts = await table()
      await ts.write(0, [{ key: 'k', value: { n: 0 } }], 5)
      await ts.write(1, [{ key: 'k', value: { n: 1 } }], 7)
      expect(await ts.get(0, 'k')).toEqual({ n: 0 })
      expect(await ts.get(1, 'k')).toEqual({ n: 1 })
      expect(await ts.get(2, 'k')).toBeUndefined()
      expect(await ts.appliedOffset(0)).toBe(5)
      expect(await ts.appliedOffset(1)).toBe(7)
      expect(await ts.appliedOffset(2)).toBe(-1)
      expect(await collect(ts.entries(1))).toEqual([['k', { n: 1 }]])
    })

    it('leaves the applied offset alone for a batch without one (-1)', async () => {
      const ts = await table()
      await ts.write(0, [{ key: 'a', value: { n: 1 } }], 3)
      await ts.write(0, [{ key: 'b', value: { n: 2 } }], -1)
      expect(await ts.appliedOffset(0)).toBe(3)
      expect(await ts.get(0, 'b')).toEqual({ n: 2 })
    })

    it('lists every entry of a partition, deletes excluded', async () => {
      const ts = await table()
      await ts.write(
        2,
        [1, 2, 3, 4, 5].map((i) => ({ key: `k${i}`, value: { n: i } })),
        0,
      )
      await ts.write(2, [{ key: 'k3', value: undefined }], 1)
      const entries = await collect(ts.entries(2))
      expect(new Map(entries)).toEqual(
        new Map([
          ['k1', { n: 1 }],
          ['k2', { n: 2 }],
          ['k4', { n: 4 }],
          ['k5', { n: 5 }],
        ]),
      )
    })

    it('round-trips values and keys of any shape', async () => {
      const ts = await table()
      const keys = [
        '',
        'plain',
        'with:colon',
        'nul\u0000inside',
        'ünïcødé ✓ 漢字',
        '🙂',
        'x'.repeat(2000),
        '0:a',
      ]
      const values: Value[] = keys.map((_, i) => ({ n: i * 1.5, label: `v${i}\n"quoted"`, tags: ['a', ''] }))
      await ts.write(
        1,
        keys.map((key, i) => ({ key, value: values[i] })),
        99,
      )
      expect(await ts.getMany(1, keys)).toEqual(values)
      for (const [i, key] of keys.entries()) expect(await ts.get(1, key)).toEqual(values[i])
      expect(new Map(await collect(ts.entries(1)))).toEqual(new Map(keys.map((k, i) => [k, values[i]])))
      // The key `0:a` of partition 1 is not the key `a` of partition 0.
      expect(await ts.get(0, 'a')).toBeUndefined()
    })

    it('serves reads after a write with the new value, including values read before it', async () => {
      const ts = await table()
      await ts.write(0, [{ key: 'a', value: { n: 1 } }], 0)
      expect(await ts.get(0, 'a')).toEqual({ n: 1 })
      const writing = ts.write(0, [{ key: 'a', value: { n: 2 } }], 1)
      // Reads issued once the write is called already see it: TableState stops overlaying the
      // value when it hands the batch to the store.
      const during = ts.get(0, 'a')
      await writing
      expect(await during).toEqual({ n: 2 })
      expect(await ts.get(0, 'a')).toEqual({ n: 2 })
      await ts.write(0, [{ key: 'a', value: undefined }], 2)
      expect(await ts.get(0, 'a')).toBeUndefined()
      await ts.write(0, [{ key: 'a', value: { n: 3 } }], 3)
      expect(await ts.getMany(0, ['a'])).toEqual([{ n: 3 }])
    })

    it('lists entries from a snapshot taken when the iteration starts', async () => {
      // TableState overlays its pending writes on a scan taken at its start: a commit that lands
      // mid-scan must not show through, half or whole. Enough keys for several native reads.
      const ts = await table()
      const n = 3000
      await ts.write(
        1,
        Array.from({ length: n }, (_, i) => ({ key: `k${String(i).padStart(4, '0')}`, value: { n: i } })),
        0,
      )
      const scan = ts.entries(1)[Symbol.asyncIterator]()
      const first = await scan.next()
      expect(first.done).toBe(false)
      await ts.write(
        1,
        [
          ...Array.from({ length: n }, (_, i) =>
            i % 2 === 0
              ? { key: `k${String(i).padStart(4, '0')}`, value: { n: -i } }
              : { key: `k${String(i).padStart(4, '0')}`, value: undefined },
          ),
          { key: 'a-new', value: { n: -1 } },
          { key: 'z-new', value: { n: -1 } },
        ],
        1,
      )
      const seen = new Map<string, Value>([first.value as [string, Value]])
      for (let r = await scan.next(); !r.done; r = await scan.next()) seen.set(r.value[0], r.value[1])
      expect(seen.size).toBe(n)
      for (const [k, v] of seen) expect(v.n).toBe(Number(k.slice(1)))
      // The write went in all the same.
      expect(await ts.get(1, 'k0002')).toEqual({ n: -2 })
      expect((await collect(ts.entries(1))).length).toBe(n / 2 + 2)
    })

    it('applies concurrent batches in call order', async () => {
      const ts = await table()
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          ts.write(
            3,
            [
              { key: 'hot', value: { n: i } },
              { key: `k${i}`, value: { n: i } },
            ],
            i,
          ),
        ),
      )
      expect(await ts.get(3, 'hot')).toEqual({ n: 19 })
      expect(await ts.appliedOffset(3)).toBe(19)
    })

    it('keeps data and applied offset of a released partition for when it comes back', async () => {
      const ts = await table()
      await ts.write(1, [{ key: 'a', value: { n: 1 } }], 41)
      await ts.write(2, [{ key: 'b', value: { n: 2 } }], 42)
      await ts.release(1)
      await ts.release(1) // twice is harmless
      expect(await ts.get(2, 'b')).toEqual({ n: 2 })
      expect(await ts.appliedOffset(1)).toBe(41)
      expect(await ts.get(1, 'a')).toEqual({ n: 1 })
      await ts.write(1, [{ key: 'c', value: { n: 3 } }], 43)
      expect(await ts.appliedOffset(1)).toBe(43)
      expect(new Map(await collect(ts.entries(1)))).toEqual(
        new Map([
          ['a', { n: 1 }],
          ['c', { n: 3 }],
        ]),
      )
    })

    it('clears one partition: data and applied offset, nothing else', async () => {
      const ts = await table()
      await ts.write(0, [{ key: 'a', value: { n: 1 } }], 8)
      await ts.write(1, [{ key: 'a', value: { n: 2 } }], 9)
      await ts.clear(0)
      expect(await ts.get(0, 'a')).toBeUndefined()
      expect(await ts.appliedOffset(0)).toBe(-1)
      expect(await collect(ts.entries(0))).toEqual([])
      expect(await ts.get(1, 'a')).toEqual({ n: 2 })
      expect(await ts.appliedOffset(1)).toBe(9)
      await ts.write(0, [{ key: 'b', value: { n: 3 } }], 0)
      expect(await ts.get(0, 'b')).toEqual({ n: 3 })
    })

    it('keeps tables of one store apart', async () => {
      const store = await makeStore()
      const a = await table(store, 'a', 1)
      const b = await table(store, 'b', 1)
      await a.write(0, [{ key: 'k', value: { n: 1 } }], 1)
      expect(await b.get(0, 'k')).toBeUndefined()
      expect(await b.appliedOffset(0)).toBe(-1)
    })

    it('stores many keys across batches', async () => {
      const ts = await table(undefined, 'many', 2)
      const n = 20_000
      for (let start = 0; start < n; start += 1000) {
        const batch = Array.from({ length: 1000 }, (_, i) => ({
          key: `key-${start + i}`,
          value: { n: start + i },
        }))
        await ts.write(start % 2000 === 0 ? 0 : 1, batch, start / 1000)
      }
      const keys0 = Array.from({ length: n }, (_, i) => `key-${i}`).filter(
        (_, i) => Math.floor(i / 1000) % 2 === 0,
      )
      const values = await ts.getMany(0, keys0)
      expect(values.every((v, i) => v?.n === Number(keys0[i]!.slice(4)))).toBe(true)
      expect((await collect(ts.entries(0))).length).toBe(n / 2)
      expect((await collect(ts.entries(1))).length).toBe(n / 2)
      expect(await ts.appliedOffset(0)).toBe(18)
      expect(await ts.appliedOffset(1)).toBe(19)
    })

    it('closes, and the store opens the table again', async () => {
      const store = await makeStore()
      const ts = await store.open(spec('closing', 2))
      await ts.write(0, [{ key: 'a', value: { n: 1 } }], 4)
      await ts.close()
      const again = await table(store, 'closing', 2)
      if (options.persistent) {
        expect(await again.get(0, 'a')).toEqual({ n: 1 })
        expect(await again.appliedOffset(0)).toBe(4)
      } else {
        expect(await again.appliedOffset(0)).toBe(-1)
      }
    })

    if (options.persistent && options.reopen) {
      const reopen = options.reopen
      it('keeps data and applied offsets in a new store on the same state', async () => {
        const first = await table(undefined, 'durable', 3)
        await first.write(
          0,
          [
            { key: 'a', value: { n: 1 } },
            { key: 'gone', value: { n: 0 } },
          ],
          100,
        )
        await first.write(0, [{ key: 'gone', value: undefined }], 101)
        await first.write(2, [{ key: 'b', value: { n: 2 } }], 7)
        await first.close()
        const second = await table(await reopen(), 'durable', 3)
        expect(await second.getMany(0, ['a', 'gone'])).toEqual([{ n: 1 }, undefined])
        expect(await second.get(2, 'b')).toEqual({ n: 2 })
        expect(await second.appliedOffset(0)).toBe(101)
        expect(await second.appliedOffset(1)).toBe(-1)
        expect(await second.appliedOffset(2)).toBe(7)
      })
    }
  })
}

function spec(table: string, partitions: number): TableStoreSpec<Value> {
  return {
    appId: 'conformance',
    table,
    partitions,
    encode: (v) => Buffer.from(JSON.stringify(v), 'utf8'),
    decode: (b) => JSON.parse(b.toString('utf8')) as Value,
  }
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}
