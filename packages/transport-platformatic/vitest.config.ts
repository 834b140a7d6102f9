import { defineConfig } from 'vitest/config'
import { shared } from '../../vitest.shared.js'

export default defineConfig({
  ...shared,
  test: {
    ...shared.test,
    // core's: starts a local Kafka broker for the *.kafka.test.ts files (or uses KAFKA_BROKERS);
    // under CI=true a broker that cannot be had fails the run, elsewhere they are skipped loudly.
    globalSetup: ['../core/test/kafka/globalSetup.ts'],
  },
})
