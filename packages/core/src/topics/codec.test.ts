import type { StandardSchemaV1 } from '@standard-schema/spec'
import { describe, expect, it } from 'vitest'
import { DecodeError, EncodeError } from '../base/errors.js'
import { bytes, json, resolveCodec, string } from './codec.js'

const positive: StandardSchemaV1<unknown, number> = {
  '~standard': {
    version: 1,
    vendor: 'test',
    validate: (v) =>
      typeof v === 'number' && v > 0 ? { value: v } : { issues: [{ message: 'must be positive' }] },
  },
}

describe('codecs', () => {
  it('json round-trips and refuses undefined', () => {
    const c = json<{ a: number[] }>()
    expect(c.decode(c.encode({ a: [1, 2] }))).toEqual({ a: [1, 2] })
    expect(() => c.encode(undefined as never)).toThrow(EncodeError)
  })

  it('string and bytes check their input', () => {
    expect(string().decode(string().encode('héllo'))).toBe('héllo')
    expect(() => string().encode(1 as never)).toThrow(EncodeError)
    expect(bytes().encode(Buffer.from('x'))).toEqual(Buffer.from('x'))
    expect(() => bytes().encode('x' as never)).toThrow(EncodeError)
  })
})

describe('resolveCodec', () => {
  it('wraps decode failures in DecodeError naming the field', () => {
    const c = resolveCodec(undefined, json(), 'value')
    let err: unknown
    try {
      c.decode(Buffer.from('{'))
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(DecodeError)
    expect(err).toMatchObject({ code: 'DECODE', field: 'value' })
    expect((err as Error).message).toMatch(/^cannot decode value: /)
    expect((err as Error).cause).toBeInstanceOf(SyntaxError)
  })

  it('a Standard Schema: JSON-decoded, then validated, with issues', () => {
    const c = resolveCodec(positive, json(), 'key')
    expect(c.decode(Buffer.from('5'))).toBe(5)
    expect(c.encode(5)).toEqual(Buffer.from('5'))
    let err: unknown
    try {
      c.decode(Buffer.from('-1'))
    } catch (e) {
      err = e
    }
    expect(err).toMatchObject({
      code: 'SCHEMA_VALIDATION',
      field: 'key',
      issues: [{ message: 'must be positive' }],
    })
    expect(() => c.decode(Buffer.from('nope'))).toThrow(expect.objectContaining({ code: 'DECODE' }))
  })

  it('refuses an asynchronous schema with a clear error', () => {
    const asyncSchema: StandardSchemaV1<unknown, number> = {
      '~standard': { version: 1, vendor: 'test', validate: async (v) => ({ value: v as number }) },
    }
    const c = resolveCodec(asyncSchema, json(), 'value')
    expect(() => c.decode(Buffer.from('1'))).toThrow(/validates asynchronously; use a synchronous schema/)
  })

  it('validateOnEncode: a schema checks the JSON a reader will decode, once, and refuses with issues', () => {
    let calls = 0
    const isoDate: StandardSchemaV1<unknown, string> = {
      '~standard': {
        version: 1,
        vendor: 'test',
        validate: (v) => {
          calls++
          return typeof v === 'string' && !Number.isNaN(Date.parse(v))
            ? { value: v }
            : { issues: [{ message: 'expected an ISO date', path: [{ key: 'at' }] }] }
        },
      },
    }
    const c = resolveCodec(isoDate, json(), 'value', { validateOnEncode: true })
    // A Date is an ISO string once in JSON, which is what a reader validates.
    expect(c.encode(new Date(0) as unknown as string).toString()).toBe('"1970-01-01T00:00:00.000Z"')
    expect(calls).toBe(1)
    let err: unknown
    try {
      c.encode('soon')
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(DecodeError)
    expect(err).toMatchObject({
      code: 'SCHEMA_VALIDATION',
      field: 'value',
      issues: [{ message: 'expected an ISO date', path: ['at'] }],
    })
    expect(() => c.encode(undefined as never)).toThrow(EncodeError)
    // Without it (tables), encode does not validate.
    expect(resolveCodec(isoDate, json(), 'value').encode('soon').toString()).toBe('"soon"')
  })

  it('validateOnEncode refuses an asynchronous schema at encode too', () => {
    const asyncSchema: StandardSchemaV1<unknown, number> = {
      '~standard': { version: 1, vendor: 'test', validate: async (v) => ({ value: v as number }) },
    }
    const c = resolveCodec(asyncSchema, json(), 'value', { validateOnEncode: true })
    expect(() => c.encode(1)).toThrow(/validates asynchronously; use a synchronous schema/)
  })

  it('refuses something that is neither a codec nor a schema', () => {
    expect(() => resolveCodec({ encode: () => Buffer.alloc(0) } as never, json(), 'value')).toThrow(TypeError)
  })
})
