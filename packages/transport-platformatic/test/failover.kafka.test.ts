// core's failover suite on this transport: 100,000 events counted exactly, and two workers of one
// group where the one leaving hands its partitions and table state to the other.
import '../src/index.js'
import { failoverSuite } from '../../core/test/kafka/failoverSuite.js'

failoverSuite('platformatic')
