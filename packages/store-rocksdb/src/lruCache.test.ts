import { describe, expect, it } from 'vitest'
import { LruCache } from './lruCache.js'

describe('LruCache', () => {
  it('evicts the least recently used key beyond its capacity', () => {
    const c = new LruCache<number>(2)
    c.set('a', 1)
    c.set('b', 2)
    expect(c.get('a')).toBe(1) // a is now the most recent
    c.set('c', 3)
    expect(c.has('b')).toBe(false)
    expect(c.get('a')).toBe(1)
    expect(c.get('c')).toBe(3)
    expect(c.size).toBe(2)
  })

  it('updates only keys it holds, and drops a prefix', () => {
    const c = new LruCache<number>(10)
    c.update('x', 1)
    expect(c.has('x')).toBe(false)
    c.set('1:a', 1)
    c.set('11:a', 2)
    c.update('1:a', 5)
    expect(c.get('1:a')).toBe(5)
    c.deletePrefix('1:')
    expect(c.has('1:a')).toBe(false)
    expect(c.get('11:a')).toBe(2)
  })

  it('holds nothing with capacity 0', () => {
    const c = new LruCache<number>(0)
    c.set('a', 1)
    expect(c.size).toBe(0)
  })
})
