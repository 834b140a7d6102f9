export type { Hit, HitGeneratorOptions } from './hits.js'
export { expectedCounts, generateHits, rng } from './hits.js'
export type { ProduceOptions, ProduceResult } from './producer.js'
export { produceHits } from './producer.js'
