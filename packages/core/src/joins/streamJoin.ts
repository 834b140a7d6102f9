/**
 * A windowed stream-stream join (`app.join`): what it declares (two buffer tables, a stream-time
 * table, the result topic, one agent per side) and the check that its topics are co-partitioned.
 * What happens to each event is in windowedJoin.ts.
 */
import type { Agent, AgentFn, AgentOptions } from '../agents/agent.js'
import { ConfigurationError } from '../base/errors.js'
import type { Logger } from '../base/logger.js'
import type { StreamEvent } from '../streams/event.js'
import type { JoinHost } from '../streams/stream.js'
import type { Table, TableOptions } from '../tables/table.js'
import type { Topic, TopicOptions } from '../topics/topic.js'
import type { Buffered } from './joinBuffer.js'
import type { JoinResult, StreamJoinOptions } from './joinOptions.js'
import { joinSettings } from './joinOptions.js'
import type { JoinClock } from './windowedJoin.js'
import { WindowedJoin } from './windowedJoin.js'

/** What a stream-stream join declares on the app. Implemented by the app. */
export interface StreamJoinHost extends JoinHost {
  readonly id: string
  readonly topicPartitions: number
  readonly logger: Logger
  topic<K, V>(name: string, options: TopicOptions<K, V>): Topic<K, V>
  table<K, V>(name: string, options: TableOptions<K, V>): Table<K, V>
  agent<V, K, R>(source: Topic<K, V>, fn: AgentFn<V, K, R>, options: AgentOptions<V, K, R>): Agent<V, K, R>
}

/**
 * Declares the join of `left` and `right` on `host` and returns its result topic
 * `<app>-<name>-join`, partitioned like the inputs: the result of an event of partition p goes to
 * partition p, so an agent reading it is co-partitioned with them too.
 */
export function declareStreamJoin<K, L, R>(
  host: StreamJoinHost,
  left: Topic<K, L>,
  right: Topic<K, R>,
  options: StreamJoinOptions,
): Topic<K, JoinResult<L, R>> {
  const settings = joinSettings(options)
  const { name } = settings
  if (left.name === right.name) {
    throw new ConfigurationError(
      `app.join(${name}): the left and the right topic are both ${left.name}; join two topics`,
    )
  }
  const partitions = left.options.partitions ?? host.topicPartitions
  const rightPartitions = right.options.partitions ?? host.topicPartitions
  if (partitions !== rightPartitions) {
    throw new ConfigurationError(
      `app.join(${name}): topic ${left.name} is declared with ${partitions} partition(s) and ${right.name} with ` +
        `${rightPartitions}. Events join when their keys are equal, so both topics must put a key in the same ` +
        'partition number: give them the same partitions (re-key one with groupBy into a topic that has them).',
    )
  }
  const tableOptions = { partitions, key: left.keyCodec }
  const lefts = host.table<K, Buffered<L>[]>(`${name}-join-left`, { ...tableOptions, default: () => [] })
  const rights = host.table<K, Buffered<R>[]>(`${name}-join-right`, { ...tableOptions, default: () => [] })
  const clock = host.table<string, JoinClock>(`${name}-join-time`, { partitions })
  const results = host.topic<K, JoinResult<L, R>>(`${host.id}-${name}-join`, {
    internal: true,
    partitions,
    key: left.keyCodec,
  })
  const join = new WindowedJoin<K, L, R>(settings, { lefts, rights, clock, results }, host.logger, () =>
    checkCopartitioned(host, name, partitions, [left.name, right.name, results.name]),
  )
  host.agent(left, sideOf(join, 'left'), { name: `${name}-join-left` })
  host.agent(right, sideOf(join, 'right'), { name: `${name}-join-right` })
  return results
}

/** The agent of one side: hands each event to the join, inside the event. */
function sideOf<K, V>(join: WindowedJoin<K, any, any>, side: 'left' | 'right'): AgentFn<V, K, unknown> {
  return async (stream) => {
    for await (const event of stream.events()) await join.process(side, event as StreamEvent<unknown, K>)
  }
}

/**
 * The join's topics as they are on the broker (they may predate the declaration) must all have
 * the partitions its tables were declared with: the key of partition p of either side is
 * buffered, matched and answered in partition p.
 */
async function checkCopartitioned(
  host: JoinHost,
  name: string,
  partitions: number,
  topics: readonly string[],
): Promise<void> {
  const counts = await Promise.all(topics.map(async (t) => [t, await host.partitionCount(t)] as const))
  const wrong = counts.filter(([, n]) => n !== undefined && n !== partitions)
  if (wrong.length === 0) return
  const found = counts.map(([t, n]) => `${t} ${n ?? '(missing)'}`).join(', ')
  throw new ConfigurationError(
    `app.join(${name}): its topics must have ${partitions} partition(s) each (as declared, and as its tables ` +
      `have), but on the broker they have: ${found}. Events join when their keys meet in the same partition ` +
      'number, so the topics must be co-partitioned: give them the same partition count.',
  )
}
