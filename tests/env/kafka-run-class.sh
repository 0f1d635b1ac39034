#!/usr/bin/env bash
# Run a Kafka CLI class from the jars in .cache/kafka-libs, quietly (log4j
# warnings to stderr), like Kafka's bin/kafka-run-class.sh.
#
# usage: tests/env/kafka-run-class.sh CLASS [ARGS...]
#
# Useful classes (Kafka 3.9; the CLIs moved out of core into kafka-tools):
#   org.apache.kafka.tools.TopicCommand                  (kafka-topics.sh)
#   org.apache.kafka.tools.consumer.group.ConsumerGroupCommand (kafka-consumer-groups.sh)
#   org.apache.kafka.tools.GetOffsetShell                (kafka-get-offsets.sh)
#   org.apache.kafka.tools.MetadataQuorumCommand         (kafka-metadata-quorum.sh)
# e.g.
#   tests/env/kafka-run-class.sh org.apache.kafka.tools.TopicCommand \
#       --bootstrap-server "$(cat DIR/bootstrap)" --create --topic t --partitions 3
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
libs=${KAFKA_LIBS:-$root/.cache/kafka-libs}
[[ $# -ge 1 ]] || { sed -n '5p' "${BASH_SOURCE[0]}" | sed 's/^# //' >&2; exit 2; }
command -v java >/dev/null || { echo "kafka-run-class.sh: java not found on PATH" >&2; exit 1; }
compgen -G "$libs/kafka_2.13-*.jar" >/dev/null ||
    { echo "kafka-run-class.sh: Kafka jars missing in $libs: run scripts/install-deps.sh" >&2; exit 1; }

log4j=$(mktemp "${TMPDIR:-/tmp}/kafka-cli-log4j.XXXXXX")
trap 'rm -f "$log4j"' EXIT
cat >"$log4j" <<'P'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
P
# shellcheck disable=SC2086
java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$log4j" ${KAFKA_CLI_JVM_OPTS:-} -cp "$libs/*" "$@"
