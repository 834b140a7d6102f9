import { describe, expect, it } from 'vitest'
import { mergeWeb } from './context.js'

describe('the command line web options over the app', () => {
  it('keep what the app says and add the flags', () => {
    expect(mergeWeb({ port: 7000, allowedHosts: ['a'] }, { token: 't', allowedHosts: ['b'] })).toEqual({
      port: 7000,
      token: 't',
      allowedHosts: ['a', 'b'],
    })
    expect(mergeWeb(undefined, { port: 0 })).toEqual({ port: 0 })
  })

  it('leave a server the app switched off off, unless a flag asks for one', () => {
    expect(mergeWeb(false, { token: 't' })).toBe(false)
    expect(mergeWeb(false, { port: 7001 })).toEqual({ port: 7001 })
    expect(mergeWeb({ port: 7000 }, false)).toBe(false)
  })
})
