import { afterEach, describe, expect, it, vi } from 'vitest'
import { consoleLogger, escapeControl, escapeJsonControl } from './logger.js'

/** What the logger wrote to stderr while `fn` ran. */
function stderrOf(fn: () => void): string {
  let written = ''
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    written += String(chunk)
    return true
  })
  try {
    fn()
  } finally {
    spy.mockRestore()
  }
  return written
}

/** The JSON fields of a one-entry output (the message must not contain ' {'). */
const fieldsOf = (out: string): any => JSON.parse(out.slice(out.indexOf(' {') + 1))

/** Every control character a terminal or a line-based collector acts on (the line end aside). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/

afterEach(() => {
  vi.restoreAllMocks()
})

describe('consoleLogger', () => {
  it('logs the stack of an err field, and its cause chain by name, message and code', () => {
    const root = Object.assign(new Error('connection refused\nINFO fake'), { code: 'ECONNREFUSED' })
    const err = Object.assign(new TypeError('commit failed', { cause: root }), { code: 'BROKER' })
    const out = stderrOf(() => consoleLogger('info', 'app').error('worker crashed', { err }))
    expect(out.endsWith('\n')).toBe(true)
    expect(out.split('\n')).toHaveLength(2) // one entry, one line
    const fields = fieldsOf(out)
    expect(fields.err).toMatchObject({
      name: 'TypeError',
      message: 'commit failed',
      code: 'BROKER',
      cause: { name: 'Error', message: 'connection refused\nINFO fake', code: 'ECONNREFUSED' },
    })
    expect(fields.err.stack).toBe(err.stack)
    expect(fields.err.stack).toMatch(/^TypeError: commit failed\n\s+at /)
    expect(fields.err.cause.stack).toBeUndefined()
  })

  it('ends a cause chain that loops', () => {
    const a = new Error('a')
    const b = new Error('b', { cause: a })
    a.cause = b
    const fields = fieldsOf(stderrOf(() => consoleLogger().warn('loop', { err: a })))
    expect(fields.err.cause).toEqual({ name: 'Error', message: 'b' })
  })

  it('escapes control characters in the message and in string fields: bad input cannot fake a line', () => {
    const fake = `x\n${new Date().toISOString()} ERROR [app] all offsets reset\r\u001b[2J\u0085\u009b31m\u2028\u0000`
    const out = stderrOf(() =>
      consoleLogger('info', 'app').warn(`skipped a record: ${fake}`, {
        key: fake,
        nested: { value: [fake] },
      }),
    )
    expect(out.indexOf('\n')).toBe(out.length - 1)
    expect(out).not.toMatch(RAW_CONTROL)
    expect(out).toContain('skipped a record: x\\n')
    expect(out).toContain('\\r\\u001b[2J\\u0085\\u009b31m\\u2028\\u0000')
    // The fields are still JSON, and mean the original strings.
    expect(fieldsOf(out)).toEqual({ key: fake, nested: { value: [fake] } })
  })

  it('writes nothing below its level', () => {
    expect(stderrOf(() => consoleLogger('warn').info('quiet'))).toBe('')
  })
})

describe('escapeControl', () => {
  it('writes line breaks, tabs and other control characters as escapes, and leaves text alone', () => {
    expect(escapeControl('a\nb\rc\td\u001be\u007ff\u0085g\u2029')).toBe(
      'a\\nb\\rc\\td\\u001be\\u007ff\\u0085g\\u2029',
    )
    expect(escapeControl('plain text, ünïcödé, 日本, emoji 🙂')).toBe('plain text, ünïcödé, 日本, emoji 🙂')
  })

  it('escapeJsonControl keeps JSON meaning the same', () => {
    const value = { s: 'a\u0085b\u2028c\u007f\u009b' }
    const json = escapeJsonControl(JSON.stringify(value))
    expect(json).not.toMatch(RAW_CONTROL)
    expect(JSON.parse(json)).toEqual(value)
  })
})
