/**
 * A table value as its changelog will hold it: encoded when it is written (not at commit), so a
 * value the codec refuses, or one too large for the changelog, fails the write that made it, with
 * an error naming the table and the key. JSON text for the default codec, bytes otherwise.
 */
import { DecodeError, EncodeError } from '../base/errors.js'
import type { Codec } from '../topics/codec.js'

/** What encoding needs of a table (its `TableSpec`). */
export interface EncodingTable<V> {
  readonly name: string
  readonly valueCodec: Codec<V>
  readonly valueText?: ((value: V) => string) | undefined
  readonly maxValueBytes: number
  keyBytes(storageKey: string): Buffer
}

export function encodeTableValue<V>(
  table: EncodingTable<V>,
  sk: string,
  value: V,
  key: unknown,
): Buffer | string {
  let encoded: Buffer | string
  try {
    encoded = table.valueText ? table.valueText(value) : table.valueCodec.encode(value)
  } catch (cause) {
    const where = `table ${table.name}: the value for key ${describeKey(sk, key)}`
    if (cause instanceof DecodeError && cause.code === 'SCHEMA_VALIDATION') {
      // The table's schema refuses it: recovery would refuse it too, on every later start.
      throw new DecodeError('SCHEMA_VALIDATION', 'value', `${where}: ${cause.message}; nothing was stored`, {
        cause,
        ...(cause.issues ? { issues: cause.issues } : {}),
      })
    }
    throw new EncodeError(
      `${where} cannot be encoded (${(cause as Error)?.message ?? cause}); nothing was stored. A ` +
        'table value must be one its value codec can encode (JSON by default: no BigInt, no cycles).',
      { cause },
    )
  }
  // UTF-8 takes at most 3 bytes per UTF-16 unit: exact sizes only near the limit.
  const text = typeof encoded === 'string'
  const limit = table.maxValueBytes
  if ((text ? 3 * encoded.length : encoded.length) + 3 * sk.length > limit) {
    const valueBytes = text ? Buffer.byteLength(encoded) : encoded.length
    const keyBytes = table.keyBytes(sk).length
    if (valueBytes + keyBytes > limit) {
      throw new EncodeError(
        `table ${table.name}: the value for key ${describeKey(sk, key)} is ${valueBytes} bytes ` +
          `encoded (key ${keyBytes}), over the table's limit of ${limit} bytes for a changelog ` +
          'record (maxValueBytes); nothing was stored. Split the value over several keys, or raise the ' +
          "table's maxValueBytes (its changelog is created with max.message.bytes to match).",
      )
    }
  }
  return encoded
}

/** The key as an error names it: JSON, cut at 200 characters. */
function describeKey(sk: string, key: unknown): string {
  let text: string
  try {
    text = JSON.stringify(key === undefined ? sk : key) ?? String(key)
  } catch {
    text = String(key)
  }
  return text.length > 200 ? `${text.slice(0, 200)}...` : text
}
