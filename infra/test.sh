#!/usr/bin/env bash
# Every test, on a fresh machine too: installs the pinned tools (DynamoDB Local,
# moto, cfn-lint, SAM CLI) if missing, then runs the whole workspace's tests:
# unit tests, the contract suites (SQLite and DynamoDB Local; the in-process bus and
# moto's EventBridge; the hub and the management API), parity and end-to-end tests,
# then one function under `cargo lambda watch` against the local stack.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash infra/setup.sh
cargo test --workspace --locked "$@"
# The README's `cargo lambda watch` walk-through (outside `cargo test`, see the script).
bash infra/check-lambda-watch.sh
