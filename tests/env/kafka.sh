#!/usr/bin/env bash
# Throwaway single-node Apache Kafka (KRaft, combined broker+controller) run
# from the jars that scripts/install-deps.sh fetches (tests/env/kafka-libs.sh
# names their directory), configured as Apache Kafka ships it.
#
# usage: tests/env/kafka.sh start DIR      start (format DIR first if new);
#                                          prints the bootstrap address
#        tests/env/kafka.sh stop DIR       SIGTERM, wait, then SIGKILL
#        tests/env/kafka.sh kill DIR       SIGKILL at once (crash for fault tests)
#        tests/env/kafka.sh restart DIR    stop, then start on the same ports and data
#        tests/env/kafka.sh start-again DIR   same as start on an existing DIR
#        tests/env/kafka.sh status DIR     exit 0 if running (prints bootstrap)
#
# DIR holds everything: server.properties, log4j2.properties (Kafka 4) or
# log4j.properties (3.9), data/ (log.dirs), kafka.log (broker log), kafka.out
# (JVM stdout/stderr), bootstrap (host:port), ports, pid, kafka-version.
# Remove DIR after stop.
#
# server.properties is the one Apache Kafka ships for a KRaft combined node,
# value for value; only what a throwaway loopback node must own differs
# (addresses, ports, log.dirs): see write_config. Anything else a test needs
# it asks for in KAFKA_EXTRA_PROPS, saying why.
#
# Environment:
#   KAFKA_VERSION       Kafka version to run (default: tests/env/kafka-libs.sh's,
#                       4.4.0; 3.9.1 for the smoke run); restarting DIR needs
#                       the version that formatted it
#   KAFKA_LIBS          jar directory; overrides KAFKA_VERSION (the version is
#                       then read from the kafka_2.13-*.jar found there)
#   KAFKA_HEAP_OPTS     default "-Xms128m -Xmx512m"
#   KAFKA_JVM_OPTS      extra JVM options
#   KAFKA_EXTRA_PROPS   extra server.properties lines (newline-separated),
#                       applied on a fresh start; later keys win
#   KAFKA_LOG_LEVEL     root log level in kafka.log (default INFO)
#   KAFKA_START_TIMEOUT seconds to wait for readiness (default 60)
#   KAFKA_STOP_TIMEOUT  seconds to wait after SIGTERM (default 30)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
libs=""   # set by check_java, with kver (e.g. 4.4.0) and kmajor (4)
kver=""
kmajor=0

die() { echo "kafka.sh: $*" >&2; exit 1; }
say() { echo "kafka.sh: $*" >&2; }

usage() {
    sed -n '6,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# True while PID runs. A zombie counts as gone: once the broker has detached
# (setsid, parent exited) it is reaped by init, which may take a second or two.
alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z && $state != X ]]
}

# pid of the broker recorded in DIR, if that process is alive and really is
# this DIR's broker (guards against pid reuse); empty otherwise.
live_pid() {
    local dir=$1 pid
    [[ -f $dir/pid ]] || return 0
    pid=$(<"$dir/pid")
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    if alive "$pid" &&
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$dir/server.properties"; then
        echo "$pid"
    fi
}

check_java() {
    local jar
    command -v java >/dev/null || die "java not found on PATH (Java 17 is expected)"
    if [[ -n ${KAFKA_LIBS:-} ]]; then
        libs=$KAFKA_LIBS
    else
        libs=$("$here/kafka-libs.sh") || die "no jars for KAFKA_VERSION=${KAFKA_VERSION:-}"
    fi
    jar=$(compgen -G "$libs/kafka_2.13-[0-9]*.jar" | head -n 1) || true
    if [[ ! -f $libs/.stamp || -z $jar ]]; then
        die "Kafka jars missing in $libs: run scripts/install-deps.sh"
    fi
    kver=${jar##*/kafka_2.13-}
    kver=${kver%.jar}
    kmajor=${kver%%.*}
    [[ $kmajor =~ ^[0-9]+$ ]] || die "cannot tell the Kafka version of $jar"
}

java_cmd() {
    # Small JVM: the serial GC suits a 2-core machine and a 512 MB heap (fewer
    # threads than G1, fast to start). C1-only (-XX:TieredStopAtLevel=1) was
    # measured: no faster to start here, so full JIT is kept for throughput.
    # shellcheck disable=SC2086
    echo java ${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m} -XX:+UseSerialGC \
        -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true ${KAFKA_JVM_OPTS:-}
}

# server.properties as Apache Kafka ships it for a single KRaft combined node,
# value for value, read from the Kafka source tree:
#   Kafka 4: config/server.properties of the 4.4 branch (last changed by
#            KAFKA-19573, apache/kafka#20299)
#   Kafka 3: config/kraft/server.properties of the 3.9 branch
# Ours, because a throwaway loopback node must own them: the addresses and
# ports (127.0.0.1, free ports, where stock listens on every interface at
# 9092/9093) and log.dirs. Everything else is stock, including what a tuned
# test broker would change: num.partitions=1, auto.create.topics.enable left
# at its default (true), 50 __consumer_offsets partitions, the default
# group.initial.rebalance.delay.ms (3000; only the old ZooKeeper
# config/server.properties set 0) and broker.session.timeout.ms (9000).
# A test that needs another value passes it in KAFKA_EXTRA_PROPS and says why.
write_config() {
    local dir=$1 port=$2 cport=$3
    {
        echo "# generated by tests/env/kafka.sh: Kafka $kver's shipped KRaft combined config"
        echo "process.roles=broker,controller"
        echo "node.id=1"
        if ((kmajor >= 4)); then
            # dynamic quorum (KIP-853); format_storage passes --standalone
            echo "controller.quorum.bootstrap.servers=127.0.0.1:$cport"
        else
            echo "controller.quorum.voters=1@127.0.0.1:$cport"
        fi
        cat <<EOF
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs=$dir/data
num.partitions=1
num.recovery.threads.per.data.dir=$( ((kmajor >= 4)) && echo 2 || echo 1)
offsets.topic.replication.factor=1
EOF
        if ((kmajor >= 4)); then
            echo "share.coordinator.state.topic.replication.factor=1"
            echo "share.coordinator.state.topic.min.isr=1"
        fi
        cat <<EOF
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
EOF
        if [[ -n ${KAFKA_EXTRA_PROPS:-} ]]; then
            echo "# KAFKA_EXTRA_PROPS (not stock; later keys win)"
            printf '%s\n' "$KAFKA_EXTRA_PROPS"
        fi
    } >"$dir/server.properties"
    write_log_config "$dir"
}

# Loggers kept at WARN in kafka.log: per-request, per-partition and per-config
# chatter. Kafka 4 moved some classes; both names are listed.
quiet_loggers=(
    kafka.request.logger 'kafka.network.RequestChannel$' state.change.logger
    kafka.log.LogCleaner org.apache.kafka.storage.internals.log.LogCleaner
    org.apache.kafka.storage.internals.log.LogLoader
    kafka.log.UnifiedLog org.apache.kafka.storage.internals.log.UnifiedLog
    org.apache.kafka.clients
    kafka.server.KafkaConfig org.apache.kafka.common.config.AbstractConfig
)

# Everything to DIR/kafka.log, nothing to the console: log4j2 for Kafka 4,
# log4j 1 (reload4j) for 3.9.
write_log_config() {
    local dir=$1 level=${KAFKA_LOG_LEVEL:-INFO} i=0 name
    if ((kmajor >= 4)); then
        {
            cat <<EOF
# generated by tests/env/kafka.sh: everything to kafka.log, nothing to the console
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $dir/kafka.log
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = $level
rootLogger.appenderRef.file.ref = file
EOF
            for name in "${quiet_loggers[@]}"; do
                i=$((i + 1))
                printf 'logger.q%d.name = %s\nlogger.q%d.level = WARN\n' "$i" "$name" "$i"
            done
        } >"$dir/log4j2.properties"
    else
        {
            cat <<EOF
# generated by tests/env/kafka.sh: everything to kafka.log, nothing to the console
log4j.rootLogger=$level, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$dir/kafka.log
log4j.appender.file.Append=true
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
            for name in "${quiet_loggers[@]}"; do
                echo "log4j.logger.$name=WARN"
            done
        } >"$dir/log4j.properties"
    fi
}

# The JVM option that points Kafka's logging at DIR's config.
log_opt() {
    if ((kmajor >= 4)); then
        echo "-Dlog4j2.configurationFile=$1/log4j2.properties"
    else
        echo "-Dlog4j.configuration=file:$1/log4j.properties"
    fi
}

format_storage() {
    local dir=$1 id standalone=()
    # A random cluster id: Kafka's Uuid is 16 random bytes, URL-safe base64
    # without padding, never starting with '-' (made here to save a JVM start).
    id=$(python3 -c 'import base64,os
while True:
    s = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not s.startswith("-"): print(s); break')
    echo "$id" >"$dir/cluster-id"
    # Kafka 4's shipped config names the quorum by controller.quorum.bootstrap
    # .servers; its quickstart formats the first controller with --standalone.
    ((kmajor >= 4)) && standalone=(--standalone)
    # shellcheck disable=SC2046
    if ! $(java_cmd) "$(log_opt "$dir")" \
        -cp "$libs/*" kafka.tools.StorageTool format -t "$id" \
        -c "$dir/server.properties" "${standalone[@]}" >"$dir/format.out" 2>&1; then
        cat "$dir/format.out" >&2
        die "formatting $dir/data failed"
    fi
}

cmd_start() {
    local dir=$1 port cport pid fresh=0 deadline t0
    t0=$(date +%s.%N)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    command -v kcat >/dev/null || die "kcat not found: run scripts/install-deps.sh"
    check_java
    pid=$(live_pid "$dir")
    [[ -z $pid ]] || die "already running in $dir (pid $pid)"

    if [[ -f $dir/ports && -f $dir/server.properties && -f $dir/data/meta.properties ]]; then
        read -r port cport <"$dir/ports"
        # Its config and log4j files were written for that version.
        if [[ -f $dir/kafka-version && $(<"$dir/kafka-version") != "$kver" ]]; then
            die "$dir was formatted by Kafka $(<"$dir/kafka-version"), not $kver: set KAFKA_VERSION=$(<"$dir/kafka-version")"
        fi
    else
        fresh=1
        mapfile -t ports < <(python3 "$here/freeport.py" 2)
        port=${ports[0]} cport=${ports[1]}
        echo "$port $cport" >"$dir/ports"
        echo "$kver" >"$dir/kafka-version"
        mkdir -p "$dir/data"
        write_config "$dir" "$port" "$cport"
        format_storage "$dir"
    fi

    # setsid: the broker gets its own session, so a Ctrl-C or a signal to the
    # caller's process group does not reach it; stop it with `stop DIR`.
    # shellcheck disable=SC2046
    setsid $(java_cmd) "$(log_opt "$dir")" \
        -Dkafka.logs.dir="$dir" -cp "$libs/*" \
        kafka.Kafka "$dir/server.properties" \
        </dev/null >>"$dir/kafka.out" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/pid"
    echo "127.0.0.1:$port" >"$dir/bootstrap"

    deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-60}))
    while :; do
        if ! alive "$pid"; then
            rm -f "$dir/pid"
            say "broker exited during startup; from $dir/kafka.out and kafka.log:"
            tail -n 20 "$dir/kafka.out" >&2 || true
            grep -E '^\[[^]]*\] (ERROR|FATAL)' "$dir/kafka.log" | tail -n 5 | cut -c1-400 >&2 || true
            die "Kafka failed to start in $dir (port $port taken? see logs above)"
        fi
        # A bare connect first: it fails at once while nothing listens, where
        # kcat would wait out its whole -m 1 second.
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
            kcat -b "127.0.0.1:$port" -L -m 1 2>/dev/null | grep -q '^ *broker 1 at'; then
            break
        fi
        if ((SECONDS >= deadline)); then
            kill -KILL "$pid" 2>/dev/null || true
            rm -f "$dir/pid"
            tail -n 30 "$dir/kafka.log" >&2 || true
            die "Kafka did not answer metadata on 127.0.0.1:$port within ${KAFKA_START_TIMEOUT:-60}s"
        fi
        sleep 0.1
    done
    say "Kafka $kver $( ((fresh)) && echo started || echo restarted) in $dir (pid $pid) in $(python3 -c "import sys;print(f'{float(sys.argv[2])-float(sys.argv[1]):.1f}')" "$t0" "$(date +%s.%N)")s"
    echo "127.0.0.1:$port"
}

cmd_stop() {
    local dir=$1 sig=${2:-TERM} pid deadline
    [[ -d $dir ]] || die "no such directory: $dir"
    dir=$(cd "$dir" && pwd)
    pid=$(live_pid "$dir")
    if [[ -z $pid ]]; then
        rm -f "$dir/pid"
        say "not running in $dir"
        return 0
    fi
    kill "-$sig" "$pid" 2>/dev/null || true
    deadline=$((SECONDS + ${KAFKA_STOP_TIMEOUT:-30}))
    while alive "$pid"; do
        if ((SECONDS >= deadline)); then
            say "pid $pid still alive ${KAFKA_STOP_TIMEOUT:-30}s after SIG$sig; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            deadline=$((SECONDS + 10))
            sig=KILL
        fi
        sleep 0.1
    done
    rm -f "$dir/pid"
    say "stopped in $dir"
}

cmd_status() {
    local dir=$1 pid
    [[ -d $dir ]] || die "no such directory: $dir"
    dir=$(cd "$dir" && pwd)
    pid=$(live_pid "$dir")
    [[ -n $pid ]] || { say "not running in $dir"; return 1; }
    cat "$dir/bootstrap"
}

[[ $# -eq 2 ]] || usage
case $1 in
start | start-again) cmd_start "$2" ;;
stop) cmd_stop "$2" TERM ;;
kill) cmd_stop "$2" KILL ;;
restart)
    cmd_stop "$2" TERM
    cmd_start "$2"
    ;;
status) cmd_status "$2" ;;
*) usage ;;
esac
