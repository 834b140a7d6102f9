import { MemoryBroker, MemoryTransport } from '../src/index.js'
import { transportConformance } from './transportConformance.js'

// Every test names its own topics and groups, so one private broker serves the whole file.
const broker = new MemoryBroker()

transportConformance('memory', { transport: () => new MemoryTransport(broker), settleMs: 2000 })
