import type { ErrorCode } from '@mephisto/core'
import { MephistoError } from '@mephisto/core'

/** Why the RocksDB store failed, for callers and scripts that react differently to each. */
export type RocksDBStoreFailure = 'not-writable' | 'locked' | 'corrupt' | 'io' | 'closed'

/** The stable code of each failure: a path this process cannot write is a configuration problem. */
const CODES = {
  'not-writable': 'CONFIGURATION',
  locked: 'STORE_LOCKED',
  corrupt: 'STORE_CORRUPT',
  io: 'STORE_IO',
  closed: 'NOT_READY',
} as const satisfies Record<RocksDBStoreFailure, ErrorCode>

/**
 * A RocksDB store failure. `reason` tells which: the path cannot be written (`not-writable`),
 * another worker holds the database (`locked`), the files are damaged (`corrupt`), another
 * I/O error (`io`), or the store was used after `close()` (`closed`).
 */
export class RocksDBStoreError extends MephistoError {
  readonly reason: RocksDBStoreFailure
  /** The directory the failure is about. */
  readonly location: string

  constructor(reason: RocksDBStoreFailure, location: string, message: string, options?: { cause?: unknown }) {
    super(CODES[reason], message, options)
    this.reason = reason
    this.location = location
  }
}

/** Turns a RocksDB open error into one that says what happened and what to do. */
export function openError(location: string, err: Error): RocksDBStoreError {
  const msg = err.message
  if (
    /\block\b/i.test(msg) &&
    /IO error|Resource temporarily unavailable|No locks available|lock hold/i.test(msg)
  ) {
    return new RocksDBStoreError(
      'locked',
      location,
      `the RocksDB database at ${location} is locked by another worker (${msg}). Two workers cannot share ` +
        'one store path: give each worker its own path, or stop the other worker first',
      { cause: err },
    )
  }
  if (isUnsupportedCompression(msg)) return unreadableError(location, err, msg)
  if (isCorruption(msg)) {
    return new RocksDBStoreError(
      'corrupt',
      location,
      `the RocksDB database at ${location} is corrupt (${msg}). Its contents can be rebuilt from the changelog: ` +
        'run `mephisto reset` (or store.reset(appId)) or delete that directory, then start the worker again',
      { cause: err },
    )
  }
  if (/Permission denied|Read-only file system|Not a directory/i.test(msg)) {
    return new RocksDBStoreError(
      'not-writable',
      location,
      `cannot write the RocksDB database at ${location} (${msg}): choose a store path this process can write`,
      { cause: err },
    )
  }
  return new RocksDBStoreError('io', location, `cannot open the RocksDB database at ${location}: ${msg}`, {
    cause: err,
  })
}

/**
 * Whether a RocksDB message reports damaged files. rocksdb-native passes RocksDB's message without
 * its status name ("Corruption: "), so this also knows the texts RocksDB uses for corruption:
 * a bad CURRENT or MANIFEST, checksum and magic-number mismatches, torn log records.
 */
export function isCorruption(message: string): boolean {
  return /^Corruption\b|corrupt|checksum mismatch|does not end with newline|magic number|bad (record|block|entry|table)|truncated|malformed|missing start of fragmented/i.test(
    message,
  )
}

/** Table files compressed with an algorithm the RocksDB of rocksdb-native is built without. */
export function isUnsupportedCompression(message: string): boolean {
  return /\b(Snappy|Zlib|BZip2|LZ4|LZ4HC|XPRESS|ZSTD)\b.* not supported/i.test(message)
}

/**
 * State this RocksDB cannot read, in practice written by @mephisto/store-rocksdb 0.1 (npm
 * `rocksdb`, whose table files are snappy-compressed). Reported as `corrupt`: the way out is the same.
 */
export function unreadableError(location: string, err: Error, message: string): RocksDBStoreError {
  return new RocksDBStoreError(
    'corrupt',
    location,
    `the RocksDB database at ${location} cannot be read by this version (${message}): it was most likely ` +
      'written by @mephisto/store-rocksdb 0.1, on the npm `rocksdb` binding, with compressed table files. ' +
      'Its contents can be rebuilt from the changelog: run `mephisto reset` (or store.reset(appId)) or delete ' +
      'that directory, then start the worker again',
    { cause: err },
  )
}
