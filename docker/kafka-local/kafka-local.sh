#!/usr/bin/env bash
# kafka-local.sh: run a real Apache Kafka broker (KRaft, combined broker+controller) from
# Maven Central jars, without Docker. One node or three, optional SASL/PLAIN listener.
# See README.md beside this file. Progress goes to stderr; machine-readable state to stdout.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DEFAULT_VERSION="${KAFKA_LOCAL_VERSION:-3.9.1}"
DEFAULT_DIR="${KAFKA_LOCAL_DIR:-$SCRIPT_DIR/.run/default}"
READY_TIMEOUT="${KAFKA_LOCAL_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_LOCAL_STOP_TIMEOUT:-30}"
JAVA_BIN="${KAFKA_LOCAL_JAVA:-java}"
MVN_BIN="${KAFKA_LOCAL_MVN:-mvn}"
# Word-split on purpose (like Kafka's own KAFKA_HEAP_OPTS / KAFKA_JVM_PERFORMANCE_OPTS).
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
JVM_OPTS="${KAFKA_JVM_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError -XX:+DisableExplicitGC -Djava.awt.headless=true}"

SASL_ADMIN_USER=admin
SASL_ADMIN_PASSWORD=admin-secret
SASL_USER=mephisto
SASL_PASSWORD=mephisto-secret

log() { echo "kafka-local: $*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  cat <<'EOF'
Usage: kafka-local.sh <command> [options]

Commands:
  fetch      [--version V]                    download broker jars into lib/<V>/ (skipped when complete)
  start      [--version V] [--nodes 1|3] [--sasl] [--dir DIR] [--prop key=value]...
                                              start a cluster (idempotent); prints state, KAFKA_BROKERS= last
  stop       [--dir DIR]                      stop all nodes, delete their data (logs are kept)
  stop-node  N [--dir DIR]                    stop node N only (data and ports kept)
  start-node N [--dir DIR]                    restart node N with its old data and ports
  status     [--dir DIR]                      per-node status (exit 0 all up, 2 some up, 3 none)
  env        [--dir DIR]                      print the state file (eval "$(kafka-local.sh env)")
  logs       [--dir DIR] [--node N] [-n LINES] [-f]
  topics     [--dir DIR] [--sasl] -- ARGS...  run kafka-topics (TopicCommand) against the cluster
  run-class  [--dir DIR] CLASS ARGS...        run any class from the cluster's jars (tools logging)

Environment: KAFKA_LOCAL_VERSION (3.9.1), KAFKA_LOCAL_DIR (.run/default), KAFKA_LOCAL_TIMEOUT (90),
  KAFKA_LOCAL_STOP_TIMEOUT (30), KAFKA_LOCAL_JAVA, KAFKA_LOCAL_MVN, KAFKA_HEAP_OPTS, KAFKA_JVM_OPTS.
EOF
}

# ---------------------------------------------------------------------------------------------
# helpers

major_of() { echo "${1%%.*}"; }
logging_of() { if [[ "$(major_of "$1")" -ge 4 ]]; then echo log4j2; else echo reload4j; fi; }
lib_dir() { echo "$SCRIPT_DIR/lib/$1"; }

abs_path() {
  local p="$1"
  [[ "$p" = /* ]] || p="$PWD/$p"
  echo "$p"
}

# Hold an exclusive lock on a file (no-op without flock): fd 9 for a cluster dir (held until
# exit), fd 8 for a fetch (released by release_fetch_lock). Brokers are started with both closed.
take_lock() {
  local file="$1" fd="${2:-9}"
  if command -v flock >/dev/null 2>&1; then
    eval "exec $fd>\"\$file\""
    flock -w 180 "$fd" || die "could not lock $file within 180s"
  fi
}
release_fetch_lock() { exec 8>&-; }

python_or_node() {
  # $1: python code, $2: node code
  if command -v python3 >/dev/null 2>&1; then
    python3 -c "$1"
  elif command -v node >/dev/null 2>&1; then
    node -e "$2"
  else
    die "python3 or node is needed"
  fi
}

# N distinct free loopback ports, space separated. All sockets are held open until all are
# chosen, so the ports are distinct.
free_ports() {
  local n="$1"
  python_or_node \
    "import socket
ss=[]
for _ in range($n):
    s=socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.bind(('127.0.0.1',0)); ss.append(s)
print(' '.join(str(s.getsockname()[1]) for s in ss))" \
    "const net=require('net');const out=[];const ss=[];
function next(){ if(out.length===$n){ss.forEach(s=>s.close());console.log(out.join(' '));return;}
const s=net.createServer();s.listen(0,'127.0.0.1',()=>{out.push(s.address().port);ss.push(s);next();});}
next();"
}

# A Kafka cluster id: 16 random bytes, base64url without padding (what StorageTool random-uuid prints).
random_cluster_id() {
  python_or_node \
    "import base64,os
while True:
    u=base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip('=')
    if not u.startswith('-'): break
print(u)" \
    "const c=require('crypto');let u;do{u=c.randomBytes(16).toString('base64url');}while(u.startsWith('-'));console.log(u);"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") >/dev/null 2>&1
}

proc_cmdline() {
  local pid="$1"
  if [[ -r "/proc/$pid/cmdline" ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true
  else
    ps -p "$pid" -o args= 2>/dev/null || true
  fi
}

# ---------------------------------------------------------------------------------------------
# fetch

cmd_fetch() {
  local version="$1"
  local dir logging
  dir="$(lib_dir "$version")"
  logging="$(logging_of "$version")"
  if [[ -f "$dir/.complete" ]]; then
    log "jars for Kafka $version already in $dir"
    return 0
  fi
  mkdir -p "$SCRIPT_DIR/lib"
  take_lock "$SCRIPT_DIR/lib/.fetch-$version.lock" 8
  if [[ -f "$dir/.complete" ]]; then # another process fetched while we waited
    release_fetch_lock
    log "jars for Kafka $version already in $dir"
    return 0
  fi
  command -v "$MVN_BIN" >/dev/null 2>&1 || die "maven ($MVN_BIN) not found; install it (apt-get install maven)"
  rm -rf "$dir"
  log "fetching Kafka $version jars ($logging logging) into $dir ..."
  local start=$SECONDS
  local mvnlog="$SCRIPT_DIR/lib/.fetch-$version.log" tools=true
  if ! (cd "$SCRIPT_DIR" && "$MVN_BIN" -B -q -Dstyle.color=never package -Dkafka.version="$version" -Dkafka.logging="$logging" >"$mvnlog" 2>&1); then
    # Some releases are incompletely published (kafka-tools/kafka-tools-api 4.4.0 are missing):
    # the broker itself runs without them, so retry broker-only.
    log "fetch with the command-line tools failed; retrying broker-only (-Dkafka.tools=false)"
    rm -rf "$dir"
    tools=false
    if ! (cd "$SCRIPT_DIR" && "$MVN_BIN" -B -q -Dstyle.color=never package -Dkafka.version="$version" -Dkafka.logging="$logging" -Dkafka.tools=false >>"$mvnlog" 2>&1); then
      cat "$mvnlog" >&2
      rm -rf "$dir"
      die "maven could not fetch Kafka $version (is it published? try: $MVN_BIN -B -U package -Dkafka.version=$version -Dkafka.logging=$logging in $SCRIPT_DIR)"
    fi
    log "warning: Kafka $version fetched without kafka-tools: the 'topics' command will not work with it"
  fi
  [[ -f "$dir/kafka_2.13-$version.jar" ]] || { rm -rf "$dir"; die "kafka_2.13-$version.jar missing after fetch"; }
  echo "fetched=$(date -u +%Y-%m-%dT%H:%M:%SZ) logging=$logging tools=$tools" >"$dir/.complete"
  release_fetch_lock
  log "fetched $(find "$dir" -name '*.jar' | wc -l | tr -d ' ') jars in $((SECONDS - start))s"
}

# ---------------------------------------------------------------------------------------------
# cluster files
#   DIR/cluster.env            static facts (version, nodes, ports, cluster id)
#   DIR/state.env              generated state for callers (KAFKA_BROKERS last)
#   DIR/node-N/server.properties, DIR/node-N/data/, DIR/node-N/pid
#   DIR/logs/node-N.log        broker output (kept by stop)
#   DIR/log4j.properties | DIR/log4j2.properties, DIR/tools-log4j.properties|tools-log4j2.properties
#   DIR/client-sasl.properties client config for --sasl

load_cluster() {
  local d="$1"
  [[ -f "$d/cluster.env" ]] || return 1
  # shellcheck disable=SC1091
  source "$d/cluster.env"
}

node_var() { local v="KAFKA_NODE_${1}_$2"; echo "${!v:-}"; }
node_pid() { cat "$DIR/node-$1/pid" 2>/dev/null || true; }
node_log() { echo "$DIR/logs/node-$1.log"; }

node_alive() {
  local pid
  pid="$(node_pid "$1")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && [[ "$(proc_cmdline "$pid")" == *"kafka.Kafka $DIR/node-$1/server.properties"* ]]
}

alive_count() {
  local i n=0
  for ((i = 1; i <= KAFKA_NODES; i++)); do
    if node_alive "$i"; then n=$((n + 1)); fi
  done
  echo "$n"
}

broker_list() {
  # $1: PORT or SASL_PORT
  local i out=""
  for ((i = 1; i <= KAFKA_NODES; i++)); do
    out+="${out:+,}127.0.0.1:$(node_var "$i" "$1")"
  done
  echo "$out"
}

write_state() {
  local i pids="" logs="" tmp="$DIR/state.env.tmp"
  for ((i = 1; i <= KAFKA_NODES; i++)); do
    pids+="${pids:+,}$(node_alive "$i" && node_pid "$i" || true)"
    logs+="${logs:+,}$(node_log "$i")"
  done
  {
    echo "# written by kafka-local.sh at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "KAFKA_LOCAL_DIR=$DIR"
    echo "KAFKA_VERSION=$KAFKA_VERSION"
    echo "KAFKA_NODES=$KAFKA_NODES"
    echo "KAFKA_CLUSTER_ID=$KAFKA_CLUSTER_ID"
    echo "KAFKA_PIDS=$pids"
    echo "KAFKA_LOGS=$logs"
    for ((i = 1; i <= KAFKA_NODES; i++)); do
      echo "KAFKA_NODE_${i}_PID=$(node_alive "$i" && node_pid "$i" || true)"
      echo "KAFKA_NODE_${i}_PORT=$(node_var "$i" PORT)"
      echo "KAFKA_NODE_${i}_CONTROLLER_PORT=$(node_var "$i" CONTROLLER_PORT)"
      if [[ "$KAFKA_SASL" == 1 ]]; then echo "KAFKA_NODE_${i}_SASL_PORT=$(node_var "$i" SASL_PORT)"; fi
      echo "KAFKA_NODE_${i}_LOG=$(node_log "$i")"
      echo "KAFKA_NODE_${i}_DATA=$DIR/node-$i/data"
    done
    if [[ "$KAFKA_SASL" == 1 ]]; then
      echo "KAFKA_SASL_MECHANISM=PLAIN"
      echo "KAFKA_SASL_USERNAME=$SASL_USER"
      echo "KAFKA_SASL_PASSWORD=$SASL_PASSWORD"
      echo "KAFKA_SASL_ADMIN_USERNAME=$SASL_ADMIN_USER"
      echo "KAFKA_SASL_ADMIN_PASSWORD=$SASL_ADMIN_PASSWORD"
      echo "KAFKA_SASL_CLIENT_CONFIG=$DIR/client-sasl.properties"
      echo "KAFKA_SASL_BROKERS=$(broker_list SASL_PORT)"
    fi
    echo "KAFKA_BROKERS=$(broker_list PORT)"
  } >"$tmp"
  mv "$tmp" "$DIR/state.env"
}

print_state() { cat "$DIR/state.env"; }

write_logging_configs() {
  if [[ "$(logging_of "$KAFKA_VERSION")" == reload4j ]]; then
    cat >"$DIR/log4j.properties" <<'EOF'
# Broker logging (reload4j / log4j 1.x API). stdout is redirected to logs/node-N.log.
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
# noisy loggers
log4j.logger.org.apache.kafka.common.config.AbstractConfig=WARN
log4j.logger.kafka.server.KafkaConfig=WARN
log4j.logger.org.apache.kafka.common.utils.AppInfoParser=WARN
log4j.logger.org.apache.kafka.clients=WARN
log4j.logger.org.apache.zookeeper=WARN
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.network.RequestChannel$=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.kafka.log=WARN
log4j.logger.org.apache.kafka.storage.internals.log=WARN
log4j.logger.kafka.authorizer.logger=WARN
EOF
    cat >"$DIR/tools-log4j.properties" <<'EOF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.appender.stderr.Target=System.err
EOF
  else
    cat >"$DIR/log4j2.properties" <<'EOF'
# Broker logging (log4j2). stdout is redirected to logs/node-N.log.
status = warn
name = kafka-local
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
# noisy loggers
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = warn
logger.kafkaconfig.name = kafka.server.KafkaConfig
logger.kafkaconfig.level = warn
logger.appinfo.name = org.apache.kafka.common.utils.AppInfoParser
logger.appinfo.level = warn
logger.clients.name = org.apache.kafka.clients
logger.clients.level = warn
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.statechange.name = state.change.logger
logger.statechange.level = warn
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = warn
logger.kafkalog.name = kafka.log
logger.kafkalog.level = warn
logger.storagelog.name = org.apache.kafka.storage.internals.log
logger.storagelog.level = warn
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = warn
EOF
    cat >"$DIR/tools-log4j2.properties" <<'EOF'
status = warn
name = kafka-local-tools
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = STDERR
EOF
  fi
}

broker_logging_opt() {
  if [[ "$(logging_of "$KAFKA_VERSION")" == reload4j ]]; then
    echo "-Dlog4j.configuration=file:$DIR/log4j.properties"
  else
    echo "-Dlog4j2.configurationFile=$DIR/log4j2.properties"
  fi
}

tools_logging_opt() {
  if [[ "$(logging_of "$KAFKA_VERSION")" == reload4j ]]; then
    echo "-Dlog4j.configuration=file:$DIR/tools-log4j.properties"
  else
    echo "-Dlog4j2.configurationFile=$DIR/tools-log4j2.properties"
  fi
}

write_server_properties() {
  local i="$1"
  shift
  local rf=1 isr=1 parts=1 voters="" j listeners advertised
  if [[ "$KAFKA_NODES" -gt 1 ]]; then rf=3 isr=2 parts=3; fi
  for ((j = 1; j <= KAFKA_NODES; j++)); do
    voters+="${voters:+,}$j@127.0.0.1:$(node_var "$j" CONTROLLER_PORT)"
  done
  listeners="PLAINTEXT://127.0.0.1:$(node_var "$i" PORT),CONTROLLER://127.0.0.1:$(node_var "$i" CONTROLLER_PORT)"
  advertised="PLAINTEXT://127.0.0.1:$(node_var "$i" PORT)"
  if [[ "$KAFKA_SASL" == 1 ]]; then
    listeners+=",SASL_PLAINTEXT://127.0.0.1:$(node_var "$i" SASL_PORT)"
    advertised+=",SASL_PLAINTEXT://127.0.0.1:$(node_var "$i" SASL_PORT)"
  fi
  mkdir -p "$DIR/node-$i"
  {
    echo "# written by kafka-local.sh (Kafka $KAFKA_VERSION, node $i of $KAFKA_NODES)"
    echo "process.roles=broker,controller"
    echo "node.id=$i"
    echo "controller.quorum.voters=$voters"
    echo "listeners=$listeners"
    echo "advertised.listeners=$advertised"
    echo "inter.broker.listener.name=PLAINTEXT"
    echo "controller.listener.names=CONTROLLER"
    echo "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT"
    echo "log.dirs=$DIR/node-$i/data"
    echo "num.partitions=1"
    echo "default.replication.factor=$rf"
    echo "min.insync.replicas=$isr"
    echo "offsets.topic.replication.factor=$rf"
    echo "offsets.topic.num.partitions=$parts"
    echo "transaction.state.log.replication.factor=$rf"
    echo "transaction.state.log.min.isr=$isr"
    echo "transaction.state.log.num.partitions=$parts"
    echo "group.initial.rebalance.delay.ms=0"
    echo "num.network.threads=2"
    echo "num.io.threads=4"
    echo "num.recovery.threads.per.data.dir=1"
    if [[ "$(major_of "$KAFKA_VERSION")" -ge 4 ]]; then
      echo "share.coordinator.state.topic.replication.factor=$rf"
      echo "share.coordinator.state.topic.min.isr=$isr"
    fi
    if [[ "$KAFKA_SASL" == 1 ]]; then
      echo "sasl.enabled.mechanisms=PLAIN"
      echo "listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN"
      echo "listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"$SASL_ADMIN_USER\" password=\"$SASL_ADMIN_PASSWORD\" user_$SASL_ADMIN_USER=\"$SASL_ADMIN_PASSWORD\" user_$SASL_USER=\"$SASL_PASSWORD\";"
    fi
    if [[ -n "${KAFKA_EXTRA_PROPS:-}" ]]; then
      echo "# --prop"
      tr ';' '\n' <<<"$KAFKA_EXTRA_PROPS" | sed '/^$/d'
    fi
  } >"$DIR/node-$i/server.properties"
}

format_node() {
  local i="$1" flags=()
  if [[ "${2:-}" == ignore-formatted ]]; then flags=(-g); fi
  mkdir -p "$DIR/node-$i/data" "$DIR/logs"
  # shellcheck disable=SC2086
  if ! "$JAVA_BIN" -Xmx256m $(tools_logging_opt) -cp "$(lib_dir "$KAFKA_VERSION")/*" kafka.tools.StorageTool format \
    -t "$KAFKA_CLUSTER_ID" -c "$DIR/node-$i/server.properties" ${flags[@]+"${flags[@]}"} >"$DIR/logs/format-node-$i.log" 2>&1; then
    cat "$DIR/logs/format-node-$i.log" >&2
    return 1
  fi
}

# Start node i in the background (own session, so it outlives the caller's process group).
launch_node() {
  local i="$1" logf pidf
  logf="$(node_log "$i")"
  pidf="$DIR/node-$i/pid"
  rm -f "$pidf"
  mkdir -p "$DIR/logs"
  echo "===== kafka-local: starting node $i (Kafka $KAFKA_VERSION) at $(date -u +%Y-%m-%dT%H:%M:%SZ) =====" >>"$logf"
  local setsid=()
  if command -v setsid >/dev/null 2>&1; then setsid=(setsid); fi
  # shellcheck disable=SC2086,SC2016
  ${setsid[@]+"${setsid[@]}"} nohup sh -c 'echo $$ >"$0"; exec "$@"' "$pidf" \
    "$JAVA_BIN" $HEAP_OPTS $JVM_OPTS "$(broker_logging_opt)" "-Dkafka.logs.dir=$DIR/logs" \
    -cp "$(lib_dir "$KAFKA_VERSION")/*" kafka.Kafka "$DIR/node-$i/server.properties" \
    >>"$logf" 2>&1 </dev/null 8>&- 9>&- &
  local t=0
  while [[ ! -s "$pidf" ]]; do
    sleep 0.1
    t=$((t + 1))
    [[ $t -lt 100 ]] || die "node $i did not record its pid"
  done
}

# Wait until each listed node has its PLAINTEXT port open and logged "Kafka Server started"
# after the given log offset. Args: "i:offset" ...
wait_ready() {
  local deadline=$((SECONDS + READY_TIMEOUT)) pending=("$@") still spec i off
  while [[ ${#pending[@]} -gt 0 ]]; do
    still=()
    for spec in "${pending[@]}"; do
      i="${spec%%:*}"
      off="${spec#*:}"
      if ! node_alive "$i"; then
        log "node $i exited during startup; last lines of $(node_log "$i"):"
        tail -c +"$((off + 1))" "$(node_log "$i")" | tail -n 60 >&2 || true
        return 1
      fi
      if port_open "$(node_var "$i" PORT)" && tail -c +"$((off + 1))" "$(node_log "$i")" | grep -q 'Kafka Server started'; then
        log "node $i ready on 127.0.0.1:$(node_var "$i" PORT)"
      else
        still+=("$spec")
      fi
    done
    pending=(${still[@]+"${still[@]}"})
    [[ ${#pending[@]} -gt 0 ]] || break
    if [[ $SECONDS -ge $deadline ]]; then
      for spec in "${pending[@]}"; do
        i="${spec%%:*}"
        off="${spec#*:}"
        log "node $i not ready after ${READY_TIMEOUT}s; last lines of $(node_log "$i"):"
        tail -c +"$((off + 1))" "$(node_log "$i")" | tail -n 60 >&2 || true
      done
      return 1
    fi
    sleep 0.5
  done
}

log_size() { if [[ -f "$1" ]]; then wc -c <"$1" | tr -d ' '; else echo 0; fi; }

# SIGTERM the given nodes, wait up to STOP_TIMEOUT seconds, then SIGKILL what is left.
kill_nodes() {
  local i pid deadline=$((SECONDS + STOP_TIMEOUT)) left
  for i in "$@"; do
    if node_alive "$i"; then
      pid="$(node_pid "$i")"
      log "stopping node $i (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  while :; do
    left=()
    for i in "$@"; do if node_alive "$i"; then left+=("$i"); fi; done
    [[ ${#left[@]} -gt 0 ]] || break
    if [[ $SECONDS -ge $deadline ]]; then
      for i in "${left[@]}"; do
        pid="$(node_pid "$i")"
        log "node $i (pid $pid) still up after ${STOP_TIMEOUT}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
      done
      sleep 0.5
      break
    fi
    sleep 0.25
  done
  for i in "$@"; do rm -f "$DIR/node-$i/pid"; done
}

# ---------------------------------------------------------------------------------------------
# commands

cmd_start() {
  local version="$1" nodes="$2" sasl="$3" explicit="$4"
  mkdir -p "$DIR"
  take_lock "$DIR/.lock"

  if load_cluster "$DIR" && [[ "$(alive_count)" -gt 0 ]]; then
    if [[ "$explicit" == 1 ]] && { [[ "$version" != "$KAFKA_VERSION" ]] || [[ "$nodes" != "$KAFKA_NODES" ]] || [[ "$sasl" != "$KAFKA_SASL" ]]; }; then
      log "warning: a cluster already runs from $DIR (Kafka $KAFKA_VERSION, $KAFKA_NODES node(s), sasl=$KAFKA_SASL); keeping it. Stop it first to change settings."
    fi
    local i specs=()
    for ((i = 1; i <= KAFKA_NODES; i++)); do
      if ! node_alive "$i"; then
        log "node $i is down; starting it again"
        specs+=("$i:$(log_size "$(node_log "$i")")")
        [[ -d "$DIR/node-$i/data" ]] || format_node "$i" ignore-formatted
        launch_node "$i"
      fi
    done
    if [[ ${#specs[@]} -gt 0 ]]; then
      wait_ready "${specs[@]}" || die "could not restart the missing node(s)"
    else
      log "already running from $DIR"
    fi
    write_state
    print_state
    return 0
  fi

  # Fresh start (also cleans a stale run whose processes are gone).
  [[ "$nodes" == 1 || "$nodes" == 3 ]] || die "--nodes must be 1 or 3"
  local t0=$SECONDS
  rm -rf "$DIR"/node-* "$DIR/state.env" "$DIR/cluster.env"
  mkdir -p "$DIR/logs"
  local f
  for f in "$DIR"/logs/node-*.log; do if [[ -f "$f" ]]; then mv -f "$f" "$f.prev"; fi; done
  cmd_fetch "$version"

  local per=2 ports i
  if [[ "$sasl" == 1 ]]; then per=3; fi
  read -r -a ports <<<"$(free_ports $((nodes * per)))"
  KAFKA_VERSION="$version"
  KAFKA_NODES="$nodes"
  KAFKA_SASL="$sasl"
  KAFKA_CLUSTER_ID="$(random_cluster_id)"
  {
    echo "KAFKA_VERSION=$KAFKA_VERSION"
    echo "KAFKA_NODES=$KAFKA_NODES"
    echo "KAFKA_SASL=$KAFKA_SASL"
    echo "KAFKA_CLUSTER_ID=$KAFKA_CLUSTER_ID"
    echo "KAFKA_EXTRA_PROPS='${KAFKA_EXTRA_PROPS:-}'"
    for ((i = 1; i <= nodes; i++)); do
      echo "KAFKA_NODE_${i}_PORT=${ports[$(((i - 1) * per))]}"
      echo "KAFKA_NODE_${i}_CONTROLLER_PORT=${ports[$(((i - 1) * per + 1))]}"
      if [[ "$sasl" == 1 ]]; then echo "KAFKA_NODE_${i}_SASL_PORT=${ports[$(((i - 1) * per + 2))]}"; fi
    done
  } >"$DIR/cluster.env"
  load_cluster "$DIR"

  write_logging_configs
  for ((i = 1; i <= nodes; i++)); do write_server_properties "$i"; done
  if [[ "$sasl" == 1 ]]; then
    cat >"$DIR/client-sasl.properties" <<EOF
security.protocol=SASL_PLAINTEXT
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="$SASL_ADMIN_USER" password="$SASL_ADMIN_PASSWORD";
EOF
  fi

  log "formatting storage (cluster id $KAFKA_CLUSTER_ID)"
  local fpids=() failed=0
  for ((i = 1; i <= nodes; i++)); do
    format_node "$i" &
    fpids+=($!)
  done
  for i in "${fpids[@]}"; do wait "$i" || failed=1; done
  [[ $failed == 0 ]] || die "formatting storage failed (see $DIR/logs/format-node-*.log)"

  local specs=()
  for ((i = 1; i <= nodes; i++)); do
    specs+=("$i:$(log_size "$(node_log "$i")")")
    launch_node "$i"
  done
  log "started Kafka $version, $nodes node(s); waiting for readiness (timeout ${READY_TIMEOUT}s)"
  if ! wait_ready "${specs[@]}"; then
    local all=()
    for ((i = 1; i <= nodes; i++)); do all+=("$i"); done
    kill_nodes "${all[@]}"
    die "Kafka did not become ready; logs are in $DIR/logs"
  fi
  log "cluster ready in $((SECONDS - t0))s"
  write_state
  print_state
}

cmd_stop() {
  [[ -d "$DIR" ]] || { log "nothing to stop in $DIR"; return 0; }
  take_lock "$DIR/.lock"
  if ! load_cluster "$DIR"; then
    log "nothing to stop in $DIR"
    return 0
  fi
  local i all=()
  for ((i = 1; i <= KAFKA_NODES; i++)); do all+=("$i"); done
  kill_nodes "${all[@]}"
  rm -rf "$DIR"/node-* "$DIR/state.env" "$DIR/cluster.env"
  log "stopped; logs kept in $DIR/logs"
}

check_node_arg() {
  [[ "$1" =~ ^[0-9]+$ ]] && [[ "$1" -ge 1 ]] && [[ "$1" -le "$KAFKA_NODES" ]] || die "node must be 1..$KAFKA_NODES"
}

cmd_stop_node() {
  local n="$1"
  take_lock "$DIR/.lock"
  load_cluster "$DIR" || die "no cluster in $DIR"
  check_node_arg "$n"
  if node_alive "$n"; then kill_nodes "$n"; else log "node $n is not running"; fi
  write_state
  print_state
}

cmd_start_node() {
  local n="$1"
  take_lock "$DIR/.lock"
  load_cluster "$DIR" || die "no cluster in $DIR (use start)"
  check_node_arg "$n"
  if node_alive "$n"; then
    log "node $n already running"
  else
    local off
    off="$(log_size "$(node_log "$n")")"
    [[ -d "$DIR/node-$n/data" ]] || format_node "$n" ignore-formatted
    launch_node "$n"
    wait_ready "$n:$off" || die "node $n did not become ready"
  fi
  write_state
  print_state
}

cmd_status() {
  if ! load_cluster "$DIR"; then
    echo "not running (no cluster in $DIR)"
    return 3
  fi
  local i up=0
  echo "Kafka $KAFKA_VERSION, $KAFKA_NODES node(s), sasl=$KAFKA_SASL, cluster id $KAFKA_CLUSTER_ID, dir $DIR"
  for ((i = 1; i <= KAFKA_NODES; i++)); do
    if node_alive "$i"; then
      up=$((up + 1))
      local saslinfo=""
      if [[ "$KAFKA_SASL" == 1 ]]; then saslinfo=" sasl=$(node_var "$i" SASL_PORT)"; fi
      echo "node $i: running pid=$(node_pid "$i") port=$(node_var "$i" PORT) controller=$(node_var "$i" CONTROLLER_PORT)$saslinfo log=$(node_log "$i")"
    else
      echo "node $i: stopped port=$(node_var "$i" PORT) log=$(node_log "$i")"
    fi
  done
  if [[ "$KAFKA_SASL" == 1 ]]; then echo "KAFKA_SASL_BROKERS=$(broker_list SASL_PORT)"; fi
  echo "KAFKA_BROKERS=$(broker_list PORT)"
  if [[ $up -eq $KAFKA_NODES ]]; then return 0; elif [[ $up -gt 0 ]]; then return 2; else return 3; fi
}

cmd_env() {
  [[ -f "$DIR/state.env" ]] || die "no state in $DIR (not started)"
  print_state
}

cmd_logs() {
  local node="$1" lines="$2" follow="$3" files=()
  if [[ -n "$node" ]]; then
    files=("$DIR/logs/node-$node.log")
  else
    files=("$DIR"/logs/node-*.log)
  fi
  [[ -e "${files[0]}" ]] || die "no logs in $DIR/logs"
  if [[ "$follow" == 1 ]]; then tail -n "$lines" -F "${files[@]}"; else tail -n "$lines" "${files[@]}"; fi
}

run_class() {
  load_cluster "$DIR" || die "no cluster in $DIR"
  if [[ "$1" == org.apache.kafka.tools.* ]] && ! compgen -G "$(lib_dir "$KAFKA_VERSION")/kafka-tools-[0-9]*.jar" >/dev/null; then
    die "lib/$KAFKA_VERSION has no kafka-tools jar (broker-only fetch); use a client library, or the tools of another version: java -cp '$SCRIPT_DIR/lib/3.9.1/*' $1 ..."
  fi
  # shellcheck disable=SC2086
  exec "$JAVA_BIN" -Xmx256m $(tools_logging_opt) -cp "$(lib_dir "$KAFKA_VERSION")/*" "$@"
}

cmd_topics() {
  local sasl="$1"
  shift
  load_cluster "$DIR" || die "no cluster in $DIR"
  if [[ "$sasl" == 1 ]]; then
    [[ "$KAFKA_SASL" == 1 ]] || die "cluster was not started with --sasl"
    run_class org.apache.kafka.tools.TopicCommand --bootstrap-server "$(broker_list SASL_PORT)" --command-config "$DIR/client-sasl.properties" "$@"
  else
    run_class org.apache.kafka.tools.TopicCommand --bootstrap-server "$(broker_list PORT)" "$@"
  fi
}

# ---------------------------------------------------------------------------------------------
# argument parsing

main() {
  [[ $# -gt 0 ]] || { usage >&2; exit 2; }
  local cmd="$1"
  shift
  local version="$DEFAULT_VERSION" nodes="${KAFKA_LOCAL_NODES:-1}" sasl=0 dir="$DEFAULT_DIR" explicit=0
  local node="" lines=100 follow=0 positional=() extra_props=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --version) version="${2:?--version needs a value}"; explicit=1; shift 2 ;;
      --version=*) version="${1#*=}"; explicit=1; shift ;;
      --nodes) nodes="${2:?--nodes needs a value}"; explicit=1; shift 2 ;;
      --nodes=*) nodes="${1#*=}"; explicit=1; shift ;;
      --sasl) sasl=1; explicit=1; shift ;;
      --dir) dir="${2:?--dir needs a value}"; shift 2 ;;
      --dir=*) dir="${1#*=}"; shift ;;
      --prop) extra_props+="${2:?--prop needs key=value};"; shift 2 ;;
      --node) node="${2:?--node needs a value}"; shift 2 ;;
      -n) lines="${2:?-n needs a value}"; shift 2 ;;
      -f | --follow) follow=1; shift ;;
      -h | --help) usage; exit 0 ;;
      --) shift; positional+=("$@"); break ;;
      *)
        if [[ "$cmd" == run-class ]]; then positional+=("$@"); break; fi
        positional+=("$1"); shift ;;
    esac
  done
  DIR="$(abs_path "$dir")"
  DIR="${DIR%/}"
  export KAFKA_EXTRA_PROPS="$extra_props"

  case "$cmd" in
    fetch) cmd_fetch "$version" ;;
    start) cmd_start "$version" "$nodes" "$sasl" "$explicit" ;;
    stop) cmd_stop ;;
    stop-node) [[ ${#positional[@]} -eq 1 ]] || die "usage: stop-node N"; cmd_stop_node "${positional[0]}" ;;
    start-node) [[ ${#positional[@]} -eq 1 ]] || die "usage: start-node N"; cmd_start_node "${positional[0]}" ;;
    status) cmd_status ;;
    env) cmd_env ;;
    logs) cmd_logs "$node" "$lines" "$follow" ;;
    topics) cmd_topics "$sasl" ${positional[@]+"${positional[@]}"} ;;
    run-class) [[ ${#positional[@]} -ge 1 ]] || die "usage: run-class CLASS [ARGS...]"; run_class "${positional[@]}" ;;
    help | -h | --help) usage ;;
    *) usage >&2; die "unknown command: $cmd" ;;
  esac
}

main "$@"
