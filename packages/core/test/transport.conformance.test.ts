import { MemoryBroker, MemoryTransport } from '../src/index.js'
import { transportConformance } from './transportConformance.js'

// Every test names its own topics and groups, so one private broker serves each run.
const broker = new MemoryBroker()
transportConformance('memory', { transport: () => new MemoryTransport(broker), settleMs: 2000 })

// Consumers that offer one transactional producer per member (KIP-447), as platformatic's do.
const grouped = new MemoryBroker({ groupTransactions: true })
transportConformance('memory, group transactions', {
  transport: () => new MemoryTransport(grouped),
  settleMs: 2000,
})
