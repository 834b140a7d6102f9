import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { App } from '../src/index.js'

interface Click {
  user: string
  page: string
}
interface Profile {
  name: string
}

let t: TestApp | undefined
afterEach(async () => {
  await t?.stop().catch(() => {})
  t = undefined
})

/** Starts `app` on the testkit; the test's TestApp is stopped after it. */
async function start(app: App): Promise<TestApp> {
  t = await TestApp.start(app)
  return t
}

/**
 * Clicks enriched with user profiles: an agent keeps the `profiles` table from the profiles topic,
 * another joins each click with it. `tablePartitions` lets a test break the co-partitioning.
 */
function enricher(type: 'inner' | 'left', tablePartitions = 4) {
  const app = new App({ id: `enrich-${type}`, logger: 'error' })
  const clicks = app.topic<string, Click>('clicks', { partitions: 4 })
  const profileTopic = app.topic<string, Profile>('profiles', { partitions: tablePartitions })
  // A default, which a join does not count as a stored value.
  const profiles = app.table<string, Profile>('profiles', {
    partitions: tablePartitions,
    default: () => ({ name: '?' }),
  })
  const joined: [Click, Profile | undefined][] = []
  app.agent(profileTopic, async function keepProfiles(stream) {
    for await (const [user, profile] of stream.items()) profiles.set(user, profile)
  })
  app.agent(clicks, async function enrich(stream) {
    const pairs = type === 'inner' ? stream.join(profiles) : stream.join(profiles, { type: 'left' })
    for await (const pair of pairs) joined.push(pair)
  })
  return { app, clicks, profileTopic, profiles, joined }
}

describe('stream-table join', () => {
  it('inner: pairs each event with the stored value of its key; keys with no stored value are dropped', async () => {
    const e = enricher('inner')
    const t = await start(e.app)
    await t.send(e.profileTopic, { key: 'ann', value: { name: 'Ann' } })
    await t.send(e.profileTopic, { key: 'bob', value: { name: 'Bob' } })
    await t.settle()
    for (const [user, page] of [
      ['ann', '/a'],
      ['cid', '/c'],
      ['bob', '/b'],
      ['ann', '/d'],
    ] as const) {
      await t.send(e.clicks, { key: user, value: { user, page } })
    }
    await t.settle()
    const byPage = [...e.joined].sort((a, b) => a[0].page.localeCompare(b[0].page))
    expect(byPage).toEqual([
      [{ user: 'ann', page: '/a' }, { name: 'Ann' }],
      [{ user: 'bob', page: '/b' }, { name: 'Bob' }],
      [{ user: 'ann', page: '/d' }, { name: 'Ann' }],
    ])
    // The dropped click was acked: everything is committed.
    await t.commit()
    const ends = [...t.broker.endOffsets('clicks')].filter(([, end]) => end > 0)
    expect(ends.map(([p]) => [p, t.committed(e.clicks).get(p)])).toEqual(ends)
  })

  it('left: keys with no stored value come with undefined, and a later value is seen', async () => {
    const e = enricher('left')
    const t = await start(e.app)
    await t.send(e.clicks, { key: 'cid', value: { user: 'cid', page: '/1' } })
    await t.settle()
    await t.send(e.profileTopic, { key: 'cid', value: { name: 'Cid' } })
    await t.settle()
    await t.send(e.clicks, { key: 'cid', value: { user: 'cid', page: '/2' } })
    await t.settle()
    expect(e.joined).toEqual([
      [{ user: 'cid', page: '/1' }, undefined],
      [{ user: 'cid', page: '/2' }, { name: 'Cid' }],
    ])
  })

  for (const tablePartitions of [2, 8]) {
    it(`stops the worker with a ConfigurationError when the table has ${tablePartitions} partitions and the topic 4`, async () => {
      const e = enricher('inner', tablePartitions)
      const t = await start(e.app)
      // Partition 0 exists in both, so no read could notice: the join checks the counts.
      await t.sendRaw('clicks', {
        key: 'ann',
        value: JSON.stringify({ user: 'ann', page: '/a' }),
        partition: 0,
      })
      const failure = await t.settle().then(
        () => undefined,
        (err: unknown) => err,
      )
      expect(failure).toMatchObject({ code: 'CONFIGURATION' })
      expect(String((failure as Error).message)).toMatch(
        new RegExp(`topic clicks has 4 partition\\(s\\) but table profiles has ${tablePartitions}`),
      )
      expect(e.joined).toEqual([])
      // Nothing acked: the click is processed again once the configuration is fixed.
      expect(t.committed(e.clicks).get(0) ?? -1).toBeLessThanOrEqual(0)
    })
  }
})
