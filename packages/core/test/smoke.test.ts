import { TestApp } from '@mephisto/testkit'
import { describe, expect, it } from 'vitest'
import { App } from '../src/index.js'

interface Hit {
  userId: string
  hits: number
  timestamp: number
}

function hitCounter() {
  const app = new App({ id: 'hit-counter', logger: 'warn' })
  const hits = app.topic<string, Hit>('hit_count')
  const countTopic = app.topic<string, Hit>('count_topic', { internal: true, partitions: 1 })
  const counts = app.table<string, number>('major-count', { default: () => 0, partitions: 1 })
  const countHits = app.agent(
    hits,
    async (stream) => {
      for await (const hit of stream) {
        if (hit.hits > 20) await countTopic.send({ key: hit.userId, value: hit })
      }
    },
    { name: 'countHits' },
  )
  const incrementCount = app.agent(
    countTopic,
    async (stream) => {
      for await (const hit of stream) {
        counts.set(hit.userId, (await counts.get(hit.userId)) + 1)
      }
    },
    { name: 'incrementCount' },
  )
  return { app, hits, countTopic, counts, countHits, incrementCount }
}

describe('smoke', () => {
  it('counts hits', async () => {
    const h = hitCounter()
    const t = await TestApp.start(h.app)
    await t.send(h.hits, { key: 'u1', value: { userId: 'u1', hits: 25, timestamp: 0 } })
    await t.send(h.hits, { key: 'u1', value: { userId: 'u1', hits: 5, timestamp: 0 } })
    await t.sendRaw('hit_count', { key: 'u2', value: '{not json' })
    await t.settle()
    expect(await t.table(h.counts).get('u1')).toBe(1)
    expect(t.sent(h.countTopic)).toHaveLength(1)
    expect(t.deadLetters(h.countHits)).toHaveLength(1)
    await t.stop()
  })
})
