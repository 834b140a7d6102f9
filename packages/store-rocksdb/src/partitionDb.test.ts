import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { dataKey, PartitionDb } from './partitionDb.js'

const root = mkdtempSync(join(tmpdir(), 'mephisto-partition-db-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))
let dirs = 0
const open = (): Promise<PartitionDb> => PartitionDb.open(join(root, `d${dirs++}`), {})

async function scan(db: PartitionDb): Promise<[string, Buffer][]> {
  const out: [string, Buffer][] = []
  for await (const entry of db.entries()) out.push(entry)
  return out
}

// What the table store builds on, checked against the binding itself: the store's own overlay of
// pending writes would hide a binding that broke these.
describe('PartitionDb', () => {
  it('makes a batch visible whole: a scan never sees part of one', async () => {
    const db = await open()
    const keys = 2_000
    const batch = (n: number) =>
      Array.from({ length: keys }, (_, k) => ({ key: dataKey(`k${k}`), value: Buffer.from(String(n)) }))
    await db.write(batch(0), 0)
    let writing = true
    const writer = (async () => {
      for (let n = 1; n <= 30; n++) await db.write(batch(n), n)
      writing = false
    })()
    let scans = 0
    while (writing) {
      const values = new Set((await scan(db)).map(([, v]) => v.toString()))
      expect(values.size).toBe(1)
      scans++
    }
    await writer
    expect(scans).toBeGreaterThan(0)
    expect(await db.appliedOffset()).toBe(30)
    await db.close()
  })

  it('lists entries in the byte order of their UTF-8 keys, metadata excluded', async () => {
    const db = await open()
    const keys = ['b', 'a', '', 'ab', 'é', 'z', '\u0000', '🙂', 'B', '10', '9']
    await db.write(
      keys.map((k) => ({ key: dataKey(k), value: Buffer.from(k) })),
      7,
    )
    const sorted = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))
    expect((await scan(db)).map(([k]) => k)).toEqual(sorted)
    await db.close()
  })

  it('reads a stored empty value as empty, not as absent', async () => {
    const db = await open()
    await db.write([{ key: dataKey('empty'), value: Buffer.alloc(0) }], 0)
    const [empty, absent] = await db.getMany([dataKey('empty'), dataKey('absent')])
    expect(empty).toEqual(Buffer.alloc(0))
    expect(absent).toBeUndefined()
    await db.close()
  })
})
