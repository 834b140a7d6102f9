import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { TestApp } from '@mephisto/testkit'
import type { BrowserContext } from 'playwright-core'
import { chromium } from 'playwright-core'
import { afterAll, describe, expect, it } from 'vitest'
import { App } from '../app/app.js'

// Debian's chromium, not a browser build downloaded by Playwright (none can be fetched here).
const CHROMIUM = process.env.MEPHISTO_CHROMIUM ?? '/usr/bin/chromium'
const INSTALL = 'apt-get update && apt-get install -y chromium'
const hasChromium = existsSync(CHROMIUM)
const ci = process.env.CI === 'true' || process.env.CI === '1'
const artifacts = fileURLToPath(new URL('../../../../test-artifacts/', import.meta.url))

if (!hasChromium && !ci) {
  console.warn(`[dashboard browser test] skipped: no Chromium at ${CHROMIUM}. Install it with: ${INSTALL}`)
}

interface Hit {
  userId: string
  hits: number
}

describe.skipIf(!hasChromium && !ci)('dashboard in headless Chromium', () => {
  let context: BrowserContext | undefined
  let profile: string | undefined
  let t: TestApp | undefined
  afterAll(async () => {
    await context?.close()
    if (profile) await rm(profile, { recursive: true, force: true })
    await t?.stop()
  })

  it('shows the numbers changing while events flow, and saves a screenshot', async () => {
    if (!hasChromium) throw new Error(`CI needs Chromium at ${CHROMIUM} for the dashboard test: ${INSTALL}`)
    const app = new App({ id: 'dashboard-demo', logger: 'warn', web: { port: 0 } })
    const hits = app.topic<string, Hit>('hits', { partitions: 4 })
    const counts = app.table<string, number>('counts', { default: () => 0, partitions: 4 })
    app.agent(
      hits,
      async (stream) => {
        for await (const hit of stream) counts.set(hit.userId, (await counts.get(hit.userId)) + hit.hits)
      },
      { name: 'countHits' },
    )
    t = await TestApp.start(app)
    const url = app.webUrl!

    profile = await mkdtemp(join(tmpdir(), 'mephisto-chromium-'))
    // A persistent context is how Playwright takes a --user-data-dir: a fresh one per run.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1200, height: 900 },
    })
    const page = context.pages()[0] ?? (await context.newPage())
    const pageErrors: string[] = []
    page.on('pageerror', (err) => pageErrors.push(err.message))
    await page.goto(`${url}/`)
    await page.waitForFunction('Number(document.body.dataset.polls ?? 0) >= 1')
    expect(await page.textContent('#app')).toBe('dashboard-demo')
    expect(await page.textContent('#state')).toBe('ok')
    expect(await page.textContent('#events-total')).toBe('0')

    // Events flow in the background while the page polls once a second.
    let sent = 0
    let flowing = true
    const traffic = (async () => {
      while (flowing) {
        for (let i = 0; i < 25; i++, sent++) {
          await t!.send(hits, { key: `user-${sent % 7}`, value: { userId: `user-${sent % 7}`, hits: 1 } })
        }
        await t!.settle()
        if (sent % 100 === 0) await t!.commit()
        await new Promise((r) => setTimeout(r, 50))
      }
    })()
    const total = async (): Promise<number> =>
      Number((await page.textContent('#events-total'))?.replace(/,/g, ''))
    // Page-side code is written as strings: this package is type-checked without the DOM library.
    const shown = (id: string): string =>
      `Number(document.querySelector('#${id}')?.textContent?.replace(/,/g, ''))`
    try {
      await page.waitForFunction(`${shown('events-total')} > 0`)
      const first = await total()
      await page.waitForFunction(`${shown('events-total')} > ${first}`)
      expect(await total()).toBeGreaterThan(first)
      await page.waitForFunction(`${shown('events-rate')} > 0`)
    } finally {
      flowing = false
      await traffic
    }
    await t.settle()
    await t.commit()
    await page.waitForFunction(`${shown('events-total')} === ${sent}`)
    // Per-partition offsets, the agent and the table are on the page.
    const partitionRows = (await page.evaluate(
      `[...document.querySelectorAll('#partitions tbody tr')].map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent))`,
    )) as string[][]
    expect(partitionRows.filter((r) => r[0] === 'hits').length).toBeGreaterThan(0)
    expect(await page.textContent('#agents tbody')).toContain('countHits')
    expect(await page.textContent('#tables tbody')).toContain('counts')
    // The chart drew a line: some pixel of the canvas is not blank.
    const drawn = await page.evaluate(`(() => {
      const canvas = document.querySelector('#chart')
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data
      for (let i = 3; i < data.length; i += 4) if (data[i] > 0) return true
      return false
    })()`)
    expect(drawn).toBe(true)
    expect(pageErrors).toEqual([])

    await mkdir(artifacts, { recursive: true })
    const shot = join(artifacts, 'dashboard.png')
    await page.screenshot({ path: shot, fullPage: true })
    expect(existsSync(shot)).toBe(true)
  })
})
