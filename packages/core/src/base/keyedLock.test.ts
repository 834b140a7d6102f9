import { describe, expect, it } from 'vitest'
import { KeyedLock } from './keyedLock.js'

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 1))

describe('KeyedLock', () => {
  it('runs the tasks of one key one at a time, in call order, and keys side by side', async () => {
    const lock = new KeyedLock<string>()
    const log: string[] = []
    const task = (name: string) => async () => {
      log.push(`${name} start`)
      await tick()
      log.push(`${name} end`)
      return name
    }
    const results = await Promise.all([
      lock.run('a', task('a1')),
      lock.run('a', task('a2')),
      lock.run('b', task('b1')),
    ])
    expect(results).toEqual(['a1', 'a2', 'b1'])
    expect(log.indexOf('a1 end')).toBeLessThan(log.indexOf('a2 start'))
    expect(log.indexOf('b1 start')).toBeLessThan(log.indexOf('a1 end'))
  })

  it('a failed task rejects its caller only; the next one still runs', async () => {
    const lock = new KeyedLock<number>()
    const failed = lock.run(1, async () => {
      throw new Error('boom')
    })
    const next = lock.run(1, async () => 'ran')
    await expect(failed).rejects.toThrow('boom')
    await expect(next).resolves.toBe('ran')
  })

  it('forgets a key once its queue is empty', async () => {
    const lock = new KeyedLock<string>()
    await lock.run('k', async () => {})
    await tick()
    expect((lock as unknown as { tails: Map<string, unknown> }).tails.size).toBe(0)
  })
})
