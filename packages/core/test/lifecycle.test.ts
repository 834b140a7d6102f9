// App.start() and App.stop() called over each other, as a signal handler in a user's entry
// point (or the CLI during an in-process restart) does.
import { describe, expect, it } from 'vitest'
import { App, MemoryBroker, MemoryTransport } from '../src/index.js'

function counter(broker: MemoryBroker) {
  const app = new App({ id: 'lifecycle', logger: 'silent', web: false })
  const words = app.topic<string, string>('words', { partitions: 2 })
  const seen = app.table<string, number>('seen', { default: () => 0, partitions: 2 })
  app.agent(words, async (stream) => {
    for await (const w of stream) seen.set(w, (await seen.get(w)) + 1)
  })
  return { app, words, seen, transport: () => new MemoryTransport(broker) }
}

describe('App lifecycle', () => {
  it('a stop() while start() runs waits for the start, then stops what it started', async () => {
    const broker = new MemoryBroker({ name: 'lifecycle-stop-during-start' })
    const c = counter(broker)
    const started = c.app.start({ transport: c.transport() })
    const stopped = c.app.stop()
    await expect(started).resolves.toBeUndefined()
    await expect(stopped).resolves.toBeUndefined()
    expect(c.app.worker?.state).toBe('stopped')
    expect(c.app.running).toBe(false)
    // It stays stopped: nothing started afterwards.
    await new Promise((r) => setTimeout(r, 100))
    expect(c.app.worker?.state).toBe('stopped')
    // And it can be started again.
    await c.app.start({ transport: c.transport() })
    expect(c.app.running).toBe(true)
    await c.app.stop()
  })

  it('a stop() while a start fails resolves, and the app is not running', async () => {
    const broker = new MemoryBroker({ name: 'lifecycle-failed-start' })
    const c = counter(broker)
    c.app.agent(
      c.words,
      async () => {
        throw new Error('broken before reading')
      },
      { name: 'broken', onError: 'crash' },
    )
    const started = c.app.start({ transport: c.transport() })
    const stopped = c.app.stop()
    const [s] = await Promise.allSettled([started, stopped])
    await expect(stopped).resolves.toBeUndefined()
    expect(c.app.running).toBe(false)
    expect(s.status).toBe('rejected')
  })
})
