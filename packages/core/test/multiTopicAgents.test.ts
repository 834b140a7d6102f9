import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { App, ConfigurationError } from '../src/index.js'

let t: TestApp | undefined
afterEach(async () => {
  await t?.stop()
  t = undefined
})

describe('agents over several topics', () => {
  it('app.agent([a, b], fn) reads both topics in one stream, each event with its topic, and commits both', async () => {
    const app = new App({ id: 'multi', logger: 'silent' })
    const clicks = app.topic<string, number>('clicks', { partitions: 2 })
    const views = app.topic<string, number>('views', { partitions: 2 })
    const totals = app.table<string, number>('totals', { default: () => 0, partitions: 2 })
    const seen: string[] = []
    app.agent([clicks, views], async (stream) => {
      for await (const event of stream.events()) {
        seen.push(`${event.topic}:${event.value}`)
        totals.set(event.key as string, (await totals.get(event.key as string)) + event.value)
      }
    })
    t = await TestApp.start(app)
    await t.send(clicks, { key: 'u', value: 1 })
    await t.send(views, { key: 'u', value: 10 })
    await t.send(clicks, { key: 'u', value: 2 })
    await t.settle()
    expect(seen.sort()).toEqual(['clicks:1', 'clicks:2', 'views:10'])
    expect(await totals.get('u')).toBe(13)
    await t.commit()
    const sum = (m: Map<number, number>) => [...m.values()].filter((o) => o > 0).reduce((a, b) => a + b, 0)
    expect(sum(t.committed(clicks))).toBe(2)
    expect(sum(t.committed(views))).toBe(1)
  })

  it('refuses an empty list, a channel in the list and a topic listed twice', () => {
    const app = new App({ id: 'multi-bad', logger: 'silent' })
    const a = app.topic<string, number>('a')
    const ch = app.channel<number>('ch')
    const fn = async () => {}
    expect(() => app.agent([], fn)).toThrow(ConfigurationError)
    expect(() => app.agent([a, ch as never], fn)).toThrow(/no channels/)
    expect(() => app.agent([a, a], fn)).toThrow(/listed twice/)
  })
})
