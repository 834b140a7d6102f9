import { isUtf8 } from 'node:buffer'
import type { StandardSchemaV1 } from '@standard-schema/spec'
import { DecodeError, EncodeError } from '../base/errors.js'

/**
 * Turns values into bytes and back. Pass one as a topic's or table's `key`/`value`.
 * `decode` may throw; the runtime turns what it throws into a dead-letter entry.
 */
export interface Codec<T> {
  encode(value: T): Buffer
  decode(bytes: Buffer): T
}

/** A codec or any Standard Schema object (zod, valibot, arktype...), JSON-decoded then validated. */
export type CodecLike<T> = Codec<T> | StandardSchemaV1<unknown, T>

/** JSON, UTF-8. The default value codec. */
export function json<T = unknown>(): Codec<T> {
  return jsonCodec as Codec<T>
}

function jsonText(value: unknown): string {
  const text = JSON.stringify(value)
  // JSON.stringify(undefined) is undefined: refuse instead of writing the string "undefined".
  if (text === undefined) throw new EncodeError(`cannot encode ${typeof value} as JSON`)
  return text
}

const jsonCodec: Codec<unknown> = {
  encode(value) {
    return Buffer.from(jsonText(value), 'utf8')
  },
  decode(bytes) {
    return JSON.parse(bytes.toString('utf8'))
  },
}

/** UTF-8 strings. The default key codec. */
export function string(): Codec<string> {
  return stringCodec
}

const stringCodec: Codec<string> = {
  encode(value) {
    if (typeof value !== 'string') throw new EncodeError(`string codec expects a string, got ${typeof value}`)
    return Buffer.from(value, 'utf8')
  },
  decode(bytes) {
    // Most keys are short and ASCII: a scan here is cheaper than the call into isUtf8.
    const n = bytes.length
    if (n <= 64) {
      let i = 0
      while (i < n && bytes[i]! < 0x80) i++
      if (i === n) return bytes.toString('latin1')
    }
    // Lossy decoding would turn distinct invalid keys into one (U+FFFD) and mix their table rows.
    if (!isUtf8(bytes)) throw new Error(`${bytes.length} byte(s) that are not valid UTF-8`)
    return bytes.toString('utf8')
  },
}

/** Raw bytes, untouched. */
export function bytes(): Codec<Buffer> {
  return bytesCodec
}

const bytesCodec: Codec<Buffer> = {
  encode(value) {
    if (!Buffer.isBuffer(value)) throw new EncodeError('bytes codec expects a Buffer')
    return value
  },
  decode(bytes) {
    return bytes
  },
}

function isStandardSchema(x: unknown): x is StandardSchemaV1<unknown, unknown> {
  return typeof x === 'object' && x !== null && '~standard' in x
}

/** How {@link resolveCodec} builds a codec. */
export interface ResolveCodecOptions {
  /**
   * A Standard Schema also checks what is encoded: the bytes are parsed back and validated as a
   * reader would decode them, so a value the readers would dead-letter is refused where it is sent.
   * Topics set it; tables do not.
   */
  validateOnEncode?: boolean
}

/**
 * Resolves a codec-like into a codec that raises {@link DecodeError} with a clear message.
 * Standard Schema validation must be synchronous: a stream decodes on its hot path.
 */
export function resolveCodec<T>(
  codec: CodecLike<T> | undefined,
  fallback: Codec<T>,
  field: 'key' | 'value',
  options?: ResolveCodecOptions,
): Codec<T> {
  if (codec === undefined) return wrapDecode(fallback, field)
  if (isStandardSchema(codec)) return schemaCodec(codec, field, options?.validateOnEncode === true)
  if (typeof codec.encode !== 'function' || typeof codec.decode !== 'function') {
    throw new TypeError(`${field} codec must have encode() and decode(), or be a Standard Schema`)
  }
  return wrapDecode(codec, field)
}

function wrapDecode<T>(codec: Codec<T>, field: 'key' | 'value'): Codec<T> {
  return {
    encode: codec.encode,
    decode(bytes) {
      try {
        return codec.decode(bytes)
      } catch (cause) {
        if (cause instanceof DecodeError) throw cause
        throw new DecodeError(
          'DECODE',
          field,
          `cannot decode ${field}: ${(cause as Error)?.message ?? cause}`,
          {
            cause,
          },
        )
      }
    },
  }
}

function schemaCodec<T>(
  schema: StandardSchemaV1<unknown, T>,
  field: 'key' | 'value',
  validateOnEncode: boolean,
): Codec<T> {
  const validate = (value: unknown): T => {
    const result = schema['~standard'].validate(value)
    if (result instanceof Promise) {
      throw new DecodeError(
        'SCHEMA_VALIDATION',
        field,
        `${field} schema validates asynchronously; use a synchronous schema`,
      )
    }
    if (result.issues) {
      const issues = result.issues.map((i) => ({
        message: i.message,
        path: i.path?.map((p) => (typeof p === 'object' && p !== null && 'key' in p ? p.key : p)),
      }))
      const where = (p: readonly unknown[] | undefined): string => (p?.length ? `${p.join('.')}: ` : '')
      throw new DecodeError(
        'SCHEMA_VALIDATION',
        field,
        `${field} failed schema validation: ${issues.map((i) => where(i.path) + i.message).join('; ')}`,
        { issues },
      )
    }
    return result.value
  }
  const decode = (bytes: Buffer): T => {
    let parsed: unknown
    try {
      parsed = JSON.parse(bytes.toString('utf8'))
    } catch (cause) {
      throw new DecodeError('DECODE', field, `cannot decode ${field}: ${(cause as Error).message}`, {
        cause,
      })
    }
    return validate(parsed)
  }
  if (!validateOnEncode) return { encode: jsonCodec.encode, decode }
  return {
    encode(value) {
      const text = jsonText(value)
      // What a reader validates is the JSON, not the object (a Date is a string there, an
      // undefined field is gone): validate that, once, and send the bytes as they are.
      validate(JSON.parse(text))
      return Buffer.from(text, 'utf8')
    },
    decode,
  }
}
