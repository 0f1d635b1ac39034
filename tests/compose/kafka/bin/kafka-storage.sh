#!/usr/bin/env bash
# Kafka's bin/kafka-storage.sh
exec "$(dirname "$0")/kafka-run-class.sh" kafka.tools.StorageTool "$@"
