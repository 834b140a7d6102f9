import { describe, expect, it } from 'vitest'
import { closest, editDistance } from './suggest.js'

describe('did you mean', () => {
  const commands = ['worker', 'send', 'agents', 'tables', 'topics', 'reset', 'dlq']

  it('finds a swapped, missing, extra or wrong letter', () => {
    expect(closest('wroker', commands)).toBe('worker')
    expect(closest('sned', commands)).toBe('send')
    expect(closest('agent', commands)).toBe('agents')
    expect(closest('tabels', commands)).toBe('tables')
    expect(closest('REST', commands)).toBe('reset')
  })

  it('takes the only name a prefix starts, and stays quiet when nothing is close', () => {
    expect(closest('rep', ['repeat', 'key', 'partition'])).toBe('repeat')
    expect(closest('to', ['topics', 'tables'])).toBe('topics')
    expect(closest('ta', ['tables', 'tasks'])).toBeUndefined()
    expect(closest('frobnicate', commands)).toBeUndefined()
    expect(closest('x', commands)).toBeUndefined()
  })

  it('counts an adjacent swap as one edit', () => {
    expect(editDistance('worker', 'wroker')).toBe(1)
    expect(editDistance('', 'abc')).toBe(3)
    expect(editDistance('kitten', 'sitting')).toBe(3)
  })
})
