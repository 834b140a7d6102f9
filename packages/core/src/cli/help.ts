import type { CommandName } from './args.js'

const GLOBAL_OPTIONS = `Options for every command:
  -A, --app <module>        the module that exports the App: a .ts, .mts, .js or .mjs file
                            (default export, an export named 'app', or the only App exported);
                            <file>:<export> picks an export by name
  -b, --broker <brokers>    override the app's broker (memory://, kafka://h:9092, h1:9092,h2:9092)
  -l, --loglevel <level>    debug, info, warn, error or silent (worker default: info, others: warn)
      --log-format <f>      auto (pretty on a terminal, JSON lines otherwise), pretty or json
  -h, --help                this help`

const EXIT_CODES = `Exit codes: 0 done, 1 runtime failure (broker, module import, crashed worker, failed send),
2 usage error (unknown command or option, bad JSON, unknown topic or agent, no App in the module).
A worker stopped by a second signal exits with 128 + the signal number (130 for SIGINT, 143 for SIGTERM).`

export const MAIN_HELP = `mephisto: run and operate Mephisto stream-processing apps (Faust-style)

Usage: mephisto -A <module> <command> [options]

Commands:
  worker                    run a worker: consume, process, serve the web pages, until SIGTERM/SIGINT
  send <topic|agent> <json> send a message to a topic, or to an agent's source topic
  agents                    list the app's agents
  tables                    list the app's tables (--values: read their contents from the changelogs)
  topics                    list the topics the app declares or creates
  reset                     remove the app's local table state (--topics: its internal topics too)
  dlq replay <dlq-topic>    send dead letters back to their source topic (or --to another)

${GLOBAL_OPTIONS}
      --version             print the version

Run 'mephisto <command> --help' for a command's options.

${EXIT_CODES}
`

export const COMMAND_HELP: Record<CommandName, string> = {
  worker: `Usage: mephisto -A <module> worker [-l info] [--web-port 6066] [--web-host 127.0.0.1] [--broker b]
                                           [--workers n|auto]

Starts a worker of the app: prints a banner (app id, broker, store, web URL, topics, agents,
tables), joins the consumer group, recovers the tables of its partitions and prints
'ready' once it is processing. Logs go to stderr as JSON lines (pretty on a terminal).

SIGTERM or SIGINT stops it cleanly: it stops fetching, lets the events in progress finish,
flushes the producer and the changelogs, commits and exits 0. A second signal exits at once
without committing (exit 128 + signal number); the uncommitted events are processed again by
the next worker. A stop that takes long logs what it waits for every 10 s and gives up after
--stop-timeout (exit 1, nothing more committed).

--workers N runs N worker processes of the app in its consumer group, under this process: it
starts no worker itself, marks each line they print with [w<i>], restarts one that dies (after
250 ms, doubling; more than 5 deaths of one worker within a minute stop them all, exit 1) and
passes SIGTERM/SIGINT on to all of them (exit 0 if every one stopped cleanly, else 1; a second
signal kills them at once). Worker i serves the web on --web-port + i (--web-port 0: each on a
free port) and keeps on-disk table state under <app id>.w<i> (worker 0 under the app id).

Options:
      --web-port <port>     port of the web server (/health, /stats, /tables/:name/:key); 0 picks one
      --web-host <host>     interface of the web server (default 127.0.0.1)
      --without-web         no web server
      --stop-timeout <s>    longest a clean stop may take, in seconds (default: the app's
                            drainTimeoutMs + 30 s, so 60; 0: no limit)
      --workers <n|auto>    run n worker processes (default 1; auto: one per core)

${GLOBAL_OPTIONS}

${EXIT_CODES}
`,
  send: `Usage: mephisto -A <module> send <topic|agent> '<json>' [--key k] [--repeat n] [--partition p]

Sends the JSON value to a topic the app declares, or to the source topic of one of its agents,
encoded with that topic's codecs. A value that fails the topic's schema is refused (nothing is
sent). Creates the topic as the app would if it does not exist yet. Prints where the messages went.

Options:
  -k, --key <key>           message key (encoded with the topic's key codec)
  -r, --repeat <n>          send the message n times (default 1)
  -p, --partition <p>       send to this partition instead of the one the key hashes to
      --json                print the result as JSON

${GLOBAL_OPTIONS}

Note: on memory:// the message stays in this process; send to a Kafka broker (--broker).

${EXIT_CODES}
`,
  agents: `Usage: mephisto -A <module> agents [--json]

Lists the app's agents: name, source, concurrency, error policy and dead-letter topic.

${GLOBAL_OPTIONS}

${EXIT_CODES}
`,
  tables: `Usage: mephisto -A <module> tables [--json] [--values [table...]]

Lists the app's tables: partitions, changelog topic, store and windows.
With --values, reads the changelog topics from the broker and prints every key's latest value
(of the named tables, or of all): the state a worker recovers on start.

${GLOBAL_OPTIONS}

${EXIT_CODES}
`,
  topics: `Usage: mephisto -A <module> topics [--json]

Lists the topics the app declares and the ones its workers create: internal topics, table
changelogs, dead-letter topics and the leader topic. Repartition topics of groupBy() appear
once a worker has created them (they are named <app>-<agent>-<name>-repartition).

${GLOBAL_OPTIONS}

${EXIT_CODES}
`,
  reset: `Usage: mephisto -A <module> reset [--topics --yes] [--workers n]

Removes the local table state of the app: calls reset(appId) on each of its table stores
(a RocksDB store deletes its files; the memory store keeps nothing between runs). Run it with
no worker of the app running on this machine.

With --topics it also deletes the app's internal topics on the broker: table changelogs,
topics declared { internal: true }, repartition topics and the leader topic. Dead-letter topics
and the consumer group's committed offsets are kept. Deleting needs --yes; without it the
topics are listed and nothing is deleted (exit 2). On memory:// it refuses (exit 2): the
topics of a memory broker live in the process that runs the app; pass --broker for Kafka.

Options:
      --topics              also delete the app's internal topics on the broker
  -y, --yes                 confirm the deletion
      --workers <n|auto>    also reset the state of the workers of 'worker --workers n'

${GLOBAL_OPTIONS}

${EXIT_CODES}
`,
  dlq: `Usage: mephisto -A <module> dlq replay <dlq-topic> [--to <topic>] [--limit n]

Reads the dead-letter topic from its start to its current end and sends each record's original
key, value, headers and timestamp back to the topic named in its mephisto-source-topic header,
or to --to. The headers the dead-letter path added (mephisto-error*, mephisto-source-*,
mephisto-agent, mephisto-failed-at) are removed. Prints how many records went where.
Replaying does not remove records from the dead-letter topic: replaying twice sends them twice.

Options:
      --to <topic>          send every record to this topic instead of its source
      --limit <n>           replay at most n records (partition by partition, oldest first)
      --json                print the result as JSON

${GLOBAL_OPTIONS}

${EXIT_CODES}
`,
}
