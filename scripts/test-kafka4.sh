#!/usr/bin/env bash
# Runs the transport conformance suite, the hit counter's and the exactly-once Kafka tests against the newest
# Kafka 4.x broker from Maven Central (4.4.0: its kafka-tools jars are missing there, so the
# broker runs from a broker-only download; the broker itself is complete).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=${KAFKA4_VERSION:-4.4.0}
KL="$root/docker/kafka-local/kafka-local.sh"
dir=$(mktemp -d -t mephisto-kafka4-XXXXXX)
trap 'bash "$KL" stop --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
bash "$KL" fetch --version "$version"
brokers=$(bash "$KL" start --version "$version" --dir "$dir" | tail -n 1 | cut -d= -f2-)
echo "[kafka4] Kafka $version broker at $brokers"
cd "$root/packages/core"
KAFKA_BROKERS="$brokers" MEPHISTO_KAFKA_LOCAL_DIR="" npx vitest run \
  test/kafka/transport.conformance.kafka.test.ts test/kafka/hitCounter.kafka.test.ts \
  test/kafka/exactlyOnce.kafka.test.ts
