import { transportConformance } from '../transportConformance.js'
import { describeKafka, testTransport } from './kafka.js'

transportConformance('kafka', { transport: () => testTransport(), settleMs: 15_000, describe: describeKafka })
