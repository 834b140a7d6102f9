#!/usr/bin/env bash
# Runs the transport conformance suite, the hit counter's and the exactly-once Kafka tests against the newest
# Kafka 4.x broker from Maven Central (4.4.0: its kafka-tools jars are missing there, so the
# broker runs from a broker-only download; the broker itself is complete), on kafkajs (core) and
# on @platformatic/kafka (packages/transport-platformatic: its conformance run, the hit counter and
# exactly-once through it, and static membership with worker processes). Both runs go ahead even
# when the first fails; the script fails if either did.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=${KAFKA4_VERSION:-4.4.0}
KL="$root/docker/kafka-local/kafka-local.sh"
dir=$(mktemp -d -t mephisto-kafka4-XXXXXX)
trap 'bash "$KL" stop --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
bash "$KL" fetch --version "$version"
brokers=$(bash "$KL" start --version "$version" --dir "$dir" | tail -n 1 | cut -d= -f2-)
echo "[kafka4] Kafka $version broker at $brokers"
status=0
echo "[kafka4] kafkajs (packages/core)"
(cd "$root/packages/core" && KAFKA_BROKERS="$brokers" MEPHISTO_KAFKA_LOCAL_DIR="" npx vitest run \
  test/kafka/transport.conformance.kafka.test.ts test/kafka/hitCounter.kafka.test.ts \
  test/kafka/exactlyOnce.kafka.test.ts) || status=1
echo "[kafka4] @platformatic/kafka (packages/transport-platformatic)"
(cd "$root/packages/transport-platformatic" && KAFKA_BROKERS="$brokers" MEPHISTO_KAFKA_LOCAL_DIR="" npx vitest run \
  test/transport.conformance.kafka.test.ts test/app.kafka.test.ts \
  test/staticMembership.kafka.test.ts test/produceRequest.kafka.test.ts test/admin.kafka.test.ts) || status=1
exit "$status"
