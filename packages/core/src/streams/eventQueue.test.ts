import { describe, expect, it } from 'vitest'
import { EventQueue } from './eventQueue.js'

describe('EventQueue', () => {
  it('is FIFO', async () => {
    const q = new EventQueue<number>(10)
    q.push(1)
    q.push(2)
    expect(await q.take()).toBe(1)
    expect(await q.take()).toBe(2)
  })

  it('take waits for the next push', async () => {
    const q = new EventQueue<number>(10)
    const next = q.take()
    expect(next).toBeInstanceOf(Promise)
    expect(q.waiting).toBe(1)
    expect(q.push(5)).toBeUndefined()
    expect(await next).toBe(5)
    expect(q.size).toBe(0)
  })

  it('push returns a promise when full, resolved once there is room (backpressure)', async () => {
    const q = new EventQueue<number>(2)
    expect(q.push(1)).toBeUndefined()
    const wait = q.push(2)
    expect(wait).toBeInstanceOf(Promise)
    let released = false
    void wait!.then(() => {
      released = true
    })
    await Promise.resolve()
    expect(released).toBe(false)
    expect(await q.take()).toBe(1)
    await Promise.resolve()
    expect(released).toBe(true)
  })

  it('a full queue releases its pushers once drained to half, not at every take', async () => {
    const q = new EventQueue<number>(10)
    for (let i = 0; i < 9; i++) expect(q.push(i)).toBeUndefined()
    let released = 0
    void q.push(9)!.then(() => released++)
    void q.push(10)!.then(() => released++)
    for (let i = 0; i < 5; i++) q.take()
    await Promise.resolve()
    expect(q.size).toBe(6)
    expect(released).toBe(0)
    q.take()
    await Promise.resolve()
    expect(q.size).toBe(5)
    expect(released).toBe(2)
  })

  it('unshift puts a retried item first, or hands it to a waiting taker', async () => {
    const q = new EventQueue<number>(10)
    q.push(2)
    q.push(3)
    expect(await q.take()).toBe(2)
    q.unshift(2)
    expect(await q.take()).toBe(2)
    expect(await q.take()).toBe(3)
    const next = q.take()
    q.unshift(9)
    expect(await next).toBe(9)
  })

  it('remove drops matching items and releases waiting pushers', async () => {
    const q = new EventQueue<number>(3)
    q.push(1)
    q.push(2)
    const wait = q.push(3)
    expect(q.remove((n) => n % 2 === 1)).toEqual([1, 3])
    await wait
    expect(q.size).toBe(1)
    expect(await q.take()).toBe(2)
  })

  it('close wakes takers with null, releases pushers and refuses new items', async () => {
    const q = new EventQueue<number>(1)
    const next = q.take()
    q.close()
    expect(await next).toBeNull()
    expect(q.push(1)).toBeUndefined()
    expect(q.take()).toBeNull()
    const full = new EventQueue<number>(1)
    const wait = full.push(1)
    full.close()
    await wait
    // Items queued before closing are still handed out.
    expect(await full.take()).toBe(1)
    expect(full.take()).toBeNull()
  })

  it('keeps order over many items (head compaction)', async () => {
    const q = new EventQueue<number>(100_000)
    for (let i = 0; i < 10_000; i++) q.push(i)
    for (let i = 0; i < 5000; i++) expect(await q.take()).toBe(i)
    q.unshift(-1)
    expect(await q.take()).toBe(-1)
    for (let i = 5000; i < 10_000; i++) expect(await q.take()).toBe(i)
    expect(q.size).toBe(0)
  })
})
