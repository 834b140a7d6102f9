import {
  Admin,
  Base,
  clientSoftwareVersion,
  kGetApi,
  kGetBootstrapConnection,
  kGetConnection,
} from '@platformatic/kafka'
import { describe, expect, it } from 'vitest'
import { KafkaClient, PLATFORMATIC_VERSION } from './client.js'

/** What platformatic tells brokers it is (ApiVersions): its package version. */
const installed = String(clientSoftwareVersion)

describe('the @platformatic/kafka seam', () => {
  it('was written against the installed @platformatic/kafka', () => {
    expect(
      installed,
      `@platformatic/kafka is now ${installed}, but client.ts was written against ${PLATFORMATIC_VERSION}. ` +
        'Re-check what its PLATFORMATIC_VERSION comment lists, then set it to the new version.',
    ).toBe(PLATFORMATIC_VERSION)
  })

  it('reaches the Base members it relies on, without connecting', async () => {
    const client = new KafkaClient(['127.0.0.1:9'], { clientId: 'seam-test' })
    expect(client.admin).toBeInstanceOf(Admin)
    expect(client.admin).toBeInstanceOf(Base)
    for (const member of [kGetApi, kGetConnection, kGetBootstrapConnection]) {
      expect(typeof (client.admin as unknown as Record<symbol, unknown>)[member]).toBe('function')
    }
    await client.close()
  })
})
