#!/usr/bin/env bash
# Run a Kafka CLI class from the jars install-deps.sh fetched (the directory
# tests/env/kafka-libs.sh names for KAFKA_VERSION, default 4.4.0; KAFKA_LIBS
# overrides), quietly (log warnings to stderr), like Kafka's bin/kafka-run-class.sh.
#
# usage: tests/env/kafka-run-class.sh CLASS [ARGS...]
#
# Useful classes (the same in Kafka 4.4 and 3.9: the CLIs live in kafka-tools):
#   org.apache.kafka.tools.TopicCommand                  (kafka-topics.sh)
#   org.apache.kafka.tools.consumer.group.ConsumerGroupCommand (kafka-consumer-groups.sh)
#   org.apache.kafka.tools.GetOffsetShell                (kafka-get-offsets.sh)
#   org.apache.kafka.tools.MetadataQuorumCommand         (kafka-metadata-quorum.sh)
#   org.apache.kafka.tools.FeatureCommand                (kafka-features.sh)
# e.g.
#   tests/env/kafka-run-class.sh org.apache.kafka.tools.TopicCommand \
#       --bootstrap-server "$(cat DIR/bootstrap)" --create --topic t --partitions 3
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ $# -ge 1 ]] || { sed -n '6p' "${BASH_SOURCE[0]}" | sed 's/^# //' >&2; exit 2; }
command -v java >/dev/null || { echo "kafka-run-class.sh: java not found on PATH" >&2; exit 1; }
libs=${KAFKA_LIBS:-$("$here/kafka-libs.sh")}
jar=$(compgen -G "$libs/kafka_2.13-[0-9]*.jar" | head -n 1) ||
    { echo "kafka-run-class.sh: Kafka jars missing in $libs: run scripts/install-deps.sh" >&2; exit 1; }
kver=${jar##*/kafka_2.13-}

# Kafka 4 logs through log4j2, 3.9 through log4j 1 (reload4j).
# (log4j2 tells a config's format by its file name: keep the .properties)
log4j=$(mktemp --suffix=.properties "${TMPDIR:-/tmp}/kafka-cli-log4j.XXXXXX")
trap 'rm -f "$log4j"' EXIT
if ((${kver%%.*} >= 4)); then
    cat >"$log4j" <<'P'
status = warn
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = stderr
P
    log_opt=-Dlog4j2.configurationFile=$log4j
else
    cat >"$log4j" <<'P'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
P
    log_opt=-Dlog4j.configuration=file:$log4j
fi
# shellcheck disable=SC2086
java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    "$log_opt" ${KAFKA_CLI_JVM_OPTS:-} -cp "$libs/*" "$@"
