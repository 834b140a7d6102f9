import { expectedCounts, generateHits } from '@mephisto/hit-counter-producer'
import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { createHitCounter } from '../src/app.js'

let t: TestApp | undefined
afterEach(async () => {
  await t?.stop()
  t = undefined
})

describe('hit counter', () => {
  it('counts only hits over 20, per user', async () => {
    const h = createHitCounter()
    t = await TestApp.start(h.app)
    await t.send(h.hits, { key: 'u1', value: { userId: 'u1', hits: 25, timestamp: 0 } })
    await t.send(h.hits, { key: 'u1', value: { userId: 'u1', hits: 20, timestamp: 1 } })
    await t.send(h.hits, { key: 'u2', value: { userId: 'u2', hits: 21, timestamp: 2 } })
    await t.send(h.hits, { key: 'u1', value: { userId: 'u1', hits: 40, timestamp: 3 } })
    await t.settle()
    expect(await t.table(h.counts).get('u1')).toBe(2)
    expect(await t.table(h.counts).get('u2')).toBe(1)
    expect(await t.table(h.counts).get('nobody')).toBe(0)
    // u1 and u2 hash to different partitions of hit_count: order holds per user only.
    expect(
      t
        .sent(h.countTopic)
        .map((m) => m.value?.hits)
        .sort(),
    ).toEqual([21, 25, 40])
  })

  it('sends malformed and schema-invalid hits to the dead-letter topic and keeps counting', async () => {
    const h = createHitCounter()
    t = await TestApp.start(h.app)
    await t.sendRaw('hit_count', { key: 'u1', value: '{"userId": "u1", "hits": ' })
    await t.sendRaw('hit_count', {
      key: 'u1',
      value: JSON.stringify({ userId: 'u1', hits: 'many', timestamp: 0 }),
    })
    await t.send(h.hits, { key: 'u1', value: { userId: 'u1', hits: 30, timestamp: 0 } })
    await t.settle()
    const dead = t.deadLetters(h.countHits)
    expect(dead.map((d) => d.code).sort()).toEqual(['DECODE', 'SCHEMA_VALIDATION'])
    expect(dead.find((d) => d.code === 'SCHEMA_VALIDATION')?.error).toContain('hits: expected a number')
    expect(dead.every((d) => d.sourceTopic === 'hit_count')).toBe(true)
    expect(dead[0]?.value).toBe('{"userId": "u1", "hits": ')
    expect(await t.table(h.counts).get('u1')).toBe(1)
    expect(h.app.monitor.snapshot().dlq.total).toBe(2)
  })

  it('keeps the counts across a graceful restart (recovered from the changelog)', async () => {
    const h = createHitCounter()
    t = await TestApp.start(h.app)
    const hits = [...generateHits(2000, { users: 10, seed: 3, startTime: 0 })]
    for (const hit of hits) await t.send(h.hits, { key: hit.userId, value: hit })
    await t.settle()
    await t.restart()
    for (const [user, n] of expectedCounts(hits)) expect(await t.table(h.counts).get(user)).toBe(n)
  })

  it('counts per minute of event time next to the total', async () => {
    const h = createHitCounter()
    t = await TestApp.start(h.app)
    const t0 = t.clock.now()
    for (const at of [t0 + 1_000, t0 + 2_000, t0 + 61_000]) {
      await t.send(h.hits, { key: 'u1', value: { userId: 'u1', hits: 30, timestamp: at } })
    }
    await t.send(h.hits, { key: 'u1', value: { userId: 'u1', hits: 5, timestamp: t0 + 3_000 } })
    await t.settle()
    expect(await t.table(h.counts).get('u1')).toBe(3)
    // Windows by the hit's timestamp: two in the first minute, one in the second.
    expect(await h.perMinute.now('u1')).toBe(2)
    await t.advance(60_000)
    expect(await h.perMinute.now('u1')).toBe(1)
  })
})
