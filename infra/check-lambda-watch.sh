#!/usr/bin/env bash
# The README's "Run one function as Lambda runs it", as a check: DynamoDB Local, a local
# stack sharing it, `cargo lambda watch` with the workspace's [workspace.metadata.lambda]
# environment, then `cargo lambda invoke --data-file` of two fixtures. It passes when
# chat-create answers 201, the chat it wrote is read back through the local stack's HTTP
# API (same table), its chat.created event reached the stack's PutEvents and fan-out (the
# admin stats count it), and ws-ping answers 200. infra/test.sh runs it after the tests
# (not inside `cargo test`: cargo lambda watch runs cargo, which would wait for the lock
# the test run holds on the target directory).
#
# The ports are the ones the workspace metadata names (DynamoDB Local 8000, the stack 3999),
# because cargo-lambda lets that metadata win over --env-var; the check refuses to start
# when they are taken.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tools=${REALTIME_TOOLS_DIR:-$root/.tools}
export PATH="$tools/venv/bin:$PATH"
target=${CARGO_TARGET_DIR:-$root/target}
ddb_port=8000
stack_port=3999
watch_port=${WATCH_PORT:-9123}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "check-lambda-watch: FAILED: $*" >&2
  for log in "$work"/*.log; do echo "--- $(basename "$log")" >&2; tail -n 20 "$log" >&2; done
  exit 1
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 240); do
    if port_open "$1"; then return 0; fi
    sleep 0.25
  done
  fail "nothing listens on 127.0.0.1:$1 after 60 s ($2)"
}
for p in $ddb_port $stack_port $watch_port; do
  if port_open "$p"; then fail "port $p is taken: stop what listens there"; fi
done

# The binaries the steps run, built first so no step waits on a build.
cargo build -q --locked -p realtime-local -p chat-create -p ws-ping
remote_test=$(cargo test -q --locked -p realtime-tests --test remote_functions --no-run --message-format=json |
  jq -r 'select(.executable != null and .target.name == "remote_functions") | .executable')
[ -x "$remote_test" ] || fail "no remote_functions test binary"

start=$(date +%s)
PORT=$ddb_port bash infra/dynamodb-local.sh >"$work/dynamodb.log" 2>&1 &
pids+=($!)
wait_port $ddb_port "DynamoDB Local"
# The functions' secret (the metadata's JWT_SECRET), so tokens work on either side.
secret=$(sed -n 's/^JWT_SECRET = "\(.*\)"$/\1/p' Cargo.toml)
JWT_SECRET=$secret "$target/debug/realtime-local" --addr "127.0.0.1:$stack_port" --data-dir "$work/data" \
  --dynamodb-endpoint "http://127.0.0.1:$ddb_port" >"$work/stack.log" 2>&1 &
pids+=($!)
wait_port $stack_port "realtime-local"
cargo lambda watch -A 127.0.0.1 -P "$watch_port" >"$work/watch.log" 2>&1 &
pids+=($!)
wait_port "$watch_port" "cargo lambda watch"

invoke() {
  cargo lambda invoke -A 127.0.0.1 -P "$watch_port" "$1" --data-file "tests/fixtures/$2" 2>>"$work/invoke.log"
}
created=$(invoke chat-create http-chat-create.json) || fail "invoke chat-create"
[ "$(jq -r .statusCode <<<"$created")" = 201 ] || fail "chat-create answered $created"
chat=$(jq -r '.body | fromjson | .chatId' <<<"$created")
echo "check-lambda-watch: chat-create (under cargo lambda watch) answered 201, chat $chat"

# The fixture's caller (alice) reads the chat back through the local stack: same table.
base="http://127.0.0.1:$stack_port"
alice=$(jq -r '.headers.authorization' tests/fixtures/http-chat-create.json)
state=$(curl -sf "$base/api/chat/$chat/state" -H "authorization: $alice") || fail "GET state of $chat"
[ "$(jq -r .title <<<"$state")" = "$(jq -r '.body | fromjson | .title' tests/fixtures/http-chat-create.json)" ] ||
  fail "the stack reads another chat: $state"

# The function's PutEvents went to the stack, whose rules ran the fan-out.
admin=$(curl -sf -X POST "$base/api/dev/token" -d '{"sub":"root","roles":["admin"]}' | jq -r .token)
seen=0
for _ in $(seq 1 40); do
  seen=$(curl -sf "$base/api/events/stats" -H "authorization: Bearer $admin" | jq -r '.byType["chat.created"].events // 0')
  [ "$seen" -ge 1 ] && break
  sleep 0.25
done
[ "$seen" -ge 1 ] || fail "chat.created never reached the local stack's fan-out"
echo "check-lambda-watch: its chat.created went through the stack's PutEvents to the fan-out"

pong=$(invoke ws-ping ws-ping.json) || fail "invoke ws-ping"
[ "$(jq -r .statusCode <<<"$pong")" = 200 ] || fail "ws-ping answered $pong"
echo "check-lambda-watch: ws-ping answered 200"

# The real binaries behind the stack: restart it with --functions-url, so every route, the
# authorizer, the log relay and the fan-out run under cargo lambda watch, then run the
# end-to-end chat scenario against it (tests/tests/remote_functions.rs).
kill "${pids[1]}"; wait "${pids[1]}" 2>/dev/null || true
JWT_SECRET=$secret "$target/debug/realtime-local" --addr "127.0.0.1:$stack_port" --data-dir "$work/data" \
  --dynamodb-endpoint "http://127.0.0.1:$ddb_port" --functions-url "http://127.0.0.1:$watch_port" >"$work/stack-remote.log" 2>&1 &
pids+=($!)
wait_port $stack_port "realtime-local --functions-url"
# cargo lambda watch builds a function at its first invocation: build them all now, so the
# scenario's timeouts measure answers, not compiles.
warm=$(date +%s)
for f in authorizer ws-connect ws-disconnect ws-subscribe chat-create chat-join chat-send-message \
  log-relay fanout chat-assistant ext-analytics; do
  cargo lambda invoke -A 127.0.0.1 -P "$watch_port" "$f" --data-ascii '{}' >/dev/null 2>>"$work/invoke.log" || true
done
echo "check-lambda-watch: 11 functions built under cargo lambda watch in $(( $(date +%s) - warm ))s"
REALTIME_REMOTE_STACK="http://127.0.0.1:$stack_port" "$remote_test" --ignored --nocapture >"$work/remote-test.log" 2>&1 ||
  { cat "$work/remote-test.log" >&2; fail "the chat scenario on the real binaries"; }
grep -h "all through the binaries" "$work/remote-test.log" | sed 's/^/check-lambda-watch: /'
echo "check-lambda-watch: passed in $(( $(date +%s) - start ))s"
