import { ConfigurationError } from '../base/errors.js'
import { memoryStore } from './memoryStore.js'
import type { Store } from './store.js'

/** A store option as given (`'memory://'` or a Store object) as a Store. */
export function resolveStore(store: Store | string): Store {
  if (typeof store !== 'string') return store
  if (store === 'memory://' || store === 'memory') return memoryStore()
  throw new ConfigurationError(
    `unknown store ${JSON.stringify(store)}: use 'memory://' or a Store object such as rocksdbStore({ path }) from @mephisto/store-rocksdb`,
  )
}
