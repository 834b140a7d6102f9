import { defineConfig } from 'vitest/config'
import { shared } from '../../vitest.shared.js'

export default defineConfig({
  ...shared,
  test: {
    ...shared.test,
    // Starts a local Kafka broker for the *.kafka.test.ts files (or uses KAFKA_BROKERS).
    globalSetup: ['./test/kafka/globalSetup.ts'],
  },
})
