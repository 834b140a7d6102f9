import { describe, expect, it } from 'vitest'
import { monitorFromEnv, parseTags, storeFromEnv } from '../src/plugins.js'

describe('store and monitor from the environment', () => {
  it('defaults to the memory store and no monitor, without loading any plug-in', async () => {
    expect(await storeFromEnv({})).toBe('memory://')
    expect(await storeFromEnv({ MEPHISTO_STORE: 'memory://' })).toBe('memory://')
    expect(await monitorFromEnv({})).toBeUndefined()
    expect(await monitorFromEnv({ MEPHISTO_MONITOR: 'none' })).toBeUndefined()
  })

  it('refuses values it does not know, naming the variable', async () => {
    await expect(storeFromEnv({ MEPHISTO_STORE: 'redis' })).rejects.toThrow(
      /MEPHISTO_STORE must be memory or rocksdb \(got "redis"\)/,
    )
    await expect(monitorFromEnv({ MEPHISTO_MONITOR: 'statsd' })).rejects.toThrow(
      /MEPHISTO_MONITOR must be none, prometheus or datadog \(got "statsd"\)/,
    )
  })

  it('reads DogStatsD tags the way DD_TAGS writes them', () => {
    expect(parseTags('env:dev,team:streams  canary')).toEqual({ env: 'dev', team: 'streams', canary: 'true' })
    expect(parseTags(undefined)).toEqual({})
  })
})
