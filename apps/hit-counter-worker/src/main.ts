// Runs the hit-counter worker until SIGTERM/SIGINT, then stops cleanly (drain, flush,
// commit). A second signal exits at once.
//   KAFKA_BROKERS=127.0.0.1:9092 pnpm --filter @mephisto/hit-counter-worker start
import { app } from './app.js'

let stopping = false
const onSignal = (signal: string): void => {
  if (stopping) {
    process.stderr.write(`${signal} again: exiting without waiting\n`)
    process.exit(1)
  }
  stopping = true
  app.logger.info(`${signal}: stopping (drain, flush, commit)`)
  app.stop().then(
    () => process.exit(0),
    (err) => {
      app.logger.error('stop failed', { err })
      process.exit(1)
    },
  )
}
process.on('SIGTERM', () => onSignal('SIGTERM'))
process.on('SIGINT', () => onSignal('SIGINT'))

await app.start()
