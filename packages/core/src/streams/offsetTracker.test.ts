import { describe, expect, it } from 'vitest'
import { OffsetTracker } from './offsetTracker.js'

describe('OffsetTracker', () => {
  it('commits nothing until something is acked', () => {
    const t = new OffsetTracker()
    t.track(0, 1)
    expect(t.committable).toBe(-1)
  })

  it('is the highest contiguous acked offset + 1', () => {
    const t = new OffsetTracker()
    const d = [0, 1, 2, 3].map((o) => t.track(o, 1))
    t.ack(d[0]!)
    expect(t.committable).toBe(1)
    t.ack(d[2]!)
    t.ack(d[3]!)
    expect(t.committable).toBe(1)
    t.ack(d[1]!)
    expect(t.committable).toBe(4)
    expect(t.outstanding).toBe(0)
  })

  it('follows the delivered offsets across gaps (compaction, transaction markers)', () => {
    const t = new OffsetTracker()
    const a = t.track(10, 1)
    const b = t.track(15, 1)
    t.ack(b)
    expect(t.committable).toBe(-1)
    t.ack(a)
    expect(t.committable).toBe(16)
  })

  it('waits for every consumer of a delivery', () => {
    const t = new OffsetTracker()
    const d = t.track(0, 2)
    t.ack(d)
    expect(t.committable).toBe(-1)
    t.ack(d)
    expect(t.committable).toBe(1)
    // Extra acks change nothing.
    t.ack(d)
    expect(t.committable).toBe(1)
  })

  it('a delivery nobody acks moves the mark only when nothing is pending before it', () => {
    const t = new OffsetTracker()
    t.track(0, 0)
    expect(t.committable).toBe(1)
    const held = t.track(1, 1)
    const skipped = t.track(2, 0)
    expect(t.committable).toBe(1)
    t.ack(held)
    expect(skipped.pending).toBe(0)
    expect(t.committable).toBe(3)
  })

  it('keeps working over long runs with one held delivery (queue compaction)', () => {
    const t = new OffsetTracker()
    const first = t.track(0, 1)
    const rest = Array.from({ length: 5000 }, (_, i) => t.track(i + 1, 1))
    for (const d of rest) t.ack(d)
    expect(t.committable).toBe(-1)
    expect(t.outstanding).toBe(5001)
    t.ack(first)
    expect(t.committable).toBe(5001)
    expect(t.outstanding).toBe(0)
    // And in order, with compaction of the head.
    const more = Array.from({ length: 3000 }, (_, i) => t.track(5001 + i, 1))
    for (const d of more) t.ack(d)
    expect(t.committable).toBe(8001)
  })
})
