import { describe, expect, it } from 'vitest'
import { inParallel } from './inParallel.js'

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 1))

describe('inParallel', () => {
  it('runs every item, never more than `limit` at once', async () => {
    let running = 0
    let most = 0
    const done: number[] = []
    await inParallel([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      most = Math.max(most, ++running)
      await tick()
      running--
      done.push(n)
    })
    expect(done.sort()).toEqual([1, 2, 3, 4, 5, 6, 7])
    expect(most).toBe(3)
  })

  it('after a failure starts no more items and rejects with it', async () => {
    const started: number[] = []
    const run = inParallel([1, 2, 3, 4], 1, async (n) => {
      started.push(n)
      if (n === 2) throw new Error('two')
    })
    await expect(run).rejects.toThrow('two')
    expect(started).toEqual([1, 2])
  })
})
