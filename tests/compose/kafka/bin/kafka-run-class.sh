#!/usr/bin/env bash
# A short kafka-run-class.sh (Kafka's bin/ script): the same environment
# variables and defaults, for the jars in /opt/kafka/libs.
#   usage: kafka-run-class.sh [-name NAME] [-loggc] CLASS [ARGS...]
base_dir=$(dirname "$0")/..
while [ $# -gt 0 ]; do
  case $1 in
    -name) shift 2 ;;
    -loggc) shift ;;
    -daemon) echo "kafka-run-class.sh: -daemon is not supported here" >&2; exit 1 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "USAGE: $0 [-name NAME] [-loggc] CLASS [ARGS...]" >&2; exit 1; }
LOG_DIR=${LOG_DIR:-$base_dir/logs}
KAFKA_LOG4J_OPTS=${KAFKA_LOG4J_OPTS:--Dlog4j.configuration=file:$base_dir/config/tools-log4j.properties}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx256M}
KAFKA_JVM_PERFORMANCE_OPTS=${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true}
# shellcheck disable=SC2086
exec java $KAFKA_HEAP_OPTS $KAFKA_JVM_PERFORMANCE_OPTS ${KAFKA_JMX_OPTS:-} \
  -Dkafka.logs.dir="$LOG_DIR" $KAFKA_LOG4J_OPTS ${KAFKA_OPTS:-} \
  -cp "$base_dir/libs/*" "$@"
