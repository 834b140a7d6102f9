import type { App } from '../app/app.js'
import type { Store } from '../stores/store.js'
import { repliesTopicOf, routesTopicOf } from '../worker/topicPlan.js'
import type { CommandContext } from './context.js'
import { onMemoryBroker, openTransport } from './context.js'
import { isOwnRepartitionTopic, leaderTopic, storeName, tableStores } from './describe.js'
import { EXIT, UsageError } from './exitCodes.js'
import { storeScope } from './poolMember.js'

/**
 * `mephisto reset`: removes the app's local table state through each store's `reset(appId)`.
 * With `--topics --yes`, also deletes the app's internal topics on the broker, so the tables
 * start empty everywhere. Dead-letter topics are kept: they are evidence, not state. With
 * `--workers N`, the state of each of the N workers of `worker --workers N` (each has its own).
 */
export async function resetCommand(ctx: CommandContext, workers = 1): Promise<number> {
  const { app, argv, output } = ctx
  if (argv.args.length > 0)
    throw new UsageError(`reset takes no arguments (got ${argv.args.join(' ')})`, 'reset')
  if (argv.options.yes && !argv.options.topics)
    throw new UsageError('--yes confirms --topics; pass both', 'reset')

  let toDelete: string[] = []
  let transport: Awaited<ReturnType<typeof openTransport>> | undefined
  try {
    if (argv.options.topics) {
      transport = await openTransport(ctx)
      const existing = await transport.admin.listTopics()
      if (onMemoryBroker(app) && existing.length === 0) {
        // A memory broker's topics live in the process that runs the app; this process has a
        // broker of its own, empty. Most likely the Kafka address was not given: say so, do nothing.
        throw new UsageError(
          `--topics deletes the app's topics on its broker, but app ${app.id} runs on ${transport.url}, ` +
            'whose topics exist only inside the process that runs it: there are none here to delete. ' +
            'Pass --broker <host:port> to delete them on Kafka. Nothing was deleted or reset',
          'reset',
        )
      }
      toDelete = internalTopics(app, existing)
      if (!argv.options.yes) {
        if (toDelete.length === 0) {
          output.out(`app ${app.id} has no internal topics on ${transport.url}: none to delete`)
          output.err('nothing was reset: add --yes to reset the local state')
        } else {
          output.out(
            `would delete ${toDelete.length} topic(s) of app ${app.id} on ${transport.url}:\n${toDelete.map((t) => `  ${t}`).join('\n')}`,
          )
          output.err(
            'nothing was deleted or reset: add --yes to delete these topics and reset the local state',
          )
        }
        return EXIT.usage
      }
    }

    for (const store of tableStores(app)) {
      const resolved: Store | undefined = typeof store === 'string' ? undefined : store
      if (resolved?.reset) {
        for (let i = 0; i < workers; i++) await resolved.reset(storeScope(app.id, i))
        output.out(
          `reset the local state of app ${app.id} in ${storeName(store)}${workers > 1 ? ` (workers 0 to ${workers - 1})` : ''}`,
        )
      } else {
        // memory:// (or a store without reset) keeps nothing between runs: nothing to remove.
        output.out(`${storeName(store)} keeps no local state between runs: nothing to reset`)
      }
    }

    if (transport && toDelete.length > 0) {
      await transport.admin.deleteTopics(toDelete)
      output.out(
        `deleted ${toDelete.length} topic(s) on ${transport.url}:\n${toDelete.map((t) => `  ${t}`).join('\n')}`,
      )
    } else if (transport) {
      output.out(`app ${app.id} has no internal topics on ${transport.url}`)
    }
    if (transport && onMemoryBroker(app))
      output.err('note: memory:// topics live only in this process; pass --broker for Kafka')
    return EXIT.ok
  } finally {
    await transport?.close()
  }
}

/**
 * The topics the app owns and rebuilds, and only those that exist: table changelogs, topics
 * declared internal, the leader, routes and replies topics, and the repartition topics of its own agents' `groupBy`s
 * (see {@link isOwnRepartitionTopic}). Nothing is picked by the app id alone: another app's id
 * may start with it.
 */
function internalTopics(app: App, existing: readonly string[]): string[] {
  const owned = new Set<string>([leaderTopic(app), routesTopicOf(app.id), repliesTopicOf(app.id)])
  for (const t of app.tables) owned.add(t.changelogTopic)
  for (const t of app.topics.values()) if (t.options.internal) owned.add(t.name)
  return existing.filter((t) => owned.has(t) || isOwnRepartitionTopic(app, t)).sort()
}
