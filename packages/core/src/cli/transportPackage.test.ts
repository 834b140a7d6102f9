import { describe, expect, it } from 'vitest'
import { UsageError } from './exitCodes.js'
import { importTransportPackage } from './transportPackage.js'

describe('MEPHISTO_TRANSPORT in the CLI', () => {
  const app = new URL('../../test/fixtures/cliApp.ts', import.meta.url).pathname

  it('does nothing for the default client or when unset', async () => {
    await importTransportPackage(app, {})
    await importTransportPackage(app, { MEPHISTO_TRANSPORT: 'kafkajs' })
  })

  it('names the package to install when it is not there', async () => {
    const failing = importTransportPackage(app, { MEPHISTO_TRANSPORT: 'nonexistent' })
    await expect(failing).rejects.toBeInstanceOf(UsageError)
    await expect(failing).rejects.toThrow(/npm install @mephisto\/transport-nonexistent/)
  })
})
