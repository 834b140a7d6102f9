import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { memoryStore } from '@mephisto/core'
import { afterAll } from 'vitest'
import { rocksdbStore } from '../src/index.js'
import { runStoreConformance } from './storeConformance.js'

const root = mkdtempSync(join(tmpdir(), 'mephisto-rocksdb-conformance-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

runStoreConformance('memory', () => memoryStore())

let n = 0
let last = ''
runStoreConformance('rocksdb', () => rocksdbStore({ path: (last = join(root, `s${n++}`)) }), {
  persistent: true,
  reopen: () => rocksdbStore({ path: last }),
})

// A cache of a few entries makes every read path (hit, miss, eviction) run in the suite.
runStoreConformance(
  'rocksdb with a 3-entry cache',
  () => rocksdbStore({ path: join(root, `c${n++}`), cacheSize: 3 }),
  {
    persistent: true,
  },
)
