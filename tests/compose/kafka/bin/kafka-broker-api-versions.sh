#!/usr/bin/env bash
# Kafka's bin/kafka-broker-api-versions.sh
exec "$(dirname "$0")/kafka-run-class.sh" kafka.admin.BrokerApiVersionsCommand "$@"
