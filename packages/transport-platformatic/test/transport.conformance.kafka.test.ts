import { transportConformance } from '../../core/test/transportConformance.js'
import { describeKafka, testTransport } from './kafka.js'

transportConformance('platformatic', {
  transport: () => testTransport(),
  settleMs: 15_000,
  describe: describeKafka,
})
