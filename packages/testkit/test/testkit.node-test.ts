/**
 * The testkit outside vitest: plain `node:test` + `node:assert`, run by `node --test` through tsx.
 * Nothing here may import vitest.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { App } from '@mephisto/core'
import { TestApp } from '@mephisto/testkit'

interface Hit {
  userId: string
  hits: number
}

function hitCounter() {
  const app = new App({ id: 'node-test-hits', logger: 'silent', commitIntervalMs: 1000 })
  const hits = app.topic<string, Hit>('hits', { partitions: 2 })
  const counts = app.table<string, number>('counts', { default: () => 0, partitions: 2 })
  const count = app.agent(
    hits,
    async function* (stream) {
      for await (const hit of stream) {
        if (hit.hits <= 20) continue
        const n = (await counts.get(hit.userId)) + 1
        counts.set(hit.userId, n)
        yield n
      }
    },
    { name: 'count' },
  )
  return { app, hits, counts, count }
}

describe('testkit under node:test', () => {
  const started: TestApp[] = []
  after(async () => {
    for (const t of started) if (t.app.running) await t.stop()
  })

  it('counts, dead-letters, commits on the fake clock and recovers after a crash', async () => {
    const h = hitCounter()
    const t = await TestApp.start(h.app)
    started.push(t)
    await t.send(h.hits, { key: 'u1', value: { userId: 'u1', hits: 25 } })
    await t.send(h.hits, { key: 'u1', value: { userId: 'u1', hits: 5 } })
    await t.sendRaw('hits', { key: 'u2', value: '{not json' })
    await t.settle()
    assert.equal(await t.table(h.counts).get('u1'), 1)
    assert.equal(t.deadLetters(h.count).length, 1)
    assert.equal(t.deadLetters(h.count)[0]?.code, 'DECODE')

    await t.advance(1000)
    const committed = [...t.committed(h.hits).values()].filter((o) => o > 0).reduce((a, b) => a + b, 0)
    assert.equal(committed, 3)

    await t.crash()
    await t.restart()
    assert.equal(await h.counts.get('u1'), 1)
  })

  it('agent().put returns what the agent yielded', async () => {
    const h = hitCounter()
    const t = await TestApp.start(h.app)
    started.push(t)
    const a = t.agent(h.count)
    assert.equal(await a.put({ userId: 'u9', hits: 50 }, { key: 'u9' }), 1)
    assert.equal(await a.put({ userId: 'u9', hits: 50 }, { key: 'u9' }), 2)
    assert.equal(await a.put({ userId: 'u9', hits: 1 }, { key: 'u9' }), undefined)
  })
})
