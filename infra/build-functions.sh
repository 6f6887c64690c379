#!/usr/bin/env bash
# The deployable builds: `cargo lambda build --release --arm64` of every function crate
# (the bootstraps `sam build` packages, as the template's `provided.al2023` on arm64
# runs them), then checks each bootstrap (an aarch64 ELF, within the size budget) and
# prints their sizes as a Markdown table. CI runs it; so can anyone:
#
#   bash infra/build-functions.sh            # every function
#   bash infra/build-functions.sh ws-ping    # some
#
# cargo-lambda (PyPI, pinned in infra/setup.sh) cross-compiles with zig, so no aarch64
# toolchain is needed beyond the Rust target, which setup.sh adds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tools=${REALTIME_TOOLS_DIR:-$root/.tools}
export PATH="$tools/venv/bin:$PATH"
target=${CARGO_TARGET_DIR:-$root/target}
# Lambda's limit is 50 MB zipped / 250 MB unzipped; this budget catches a dependency
# that bloats every function long before that.
max_mib=${BOOTSTRAP_MAX_MIB:-12}

if [ "$#" -gt 0 ]; then
  functions=("$@")
else
  functions=()
  for dir in functions/*/; do functions+=("$(basename "$dir")"); done
fi
pkgs=()
for f in "${functions[@]}"; do pkgs+=(-p "$f"); done

start=$(date +%s)
cargo lambda build --release --arm64 --locked "${pkgs[@]}"
took=$(( $(date +%s) - start ))

status=0
echo
echo "| function | bootstrap (bytes) | MiB |"
echo "|---|---:|---:|"
for f in "${functions[@]}"; do
  bin="$target/lambda/$f/bootstrap"
  if [ ! -f "$bin" ]; then
    echo "build-functions: no bootstrap for $f at $bin" >&2
    status=1
    continue
  fi
  # e_machine (offset 18, little-endian) 0x00b7 is aarch64.
  machine=$(od -An -tx1 -j18 -N2 "$bin" | tr -d ' \n')
  if [ "$(head -c4 "$bin" | od -An -c | tr -d ' \n')" != "177ELF" ] || [ "$machine" != "b700" ]; then
    echo "build-functions: $bin is not an aarch64 ELF (e_machine $machine)" >&2
    status=1
  fi
  bytes=$(stat -c %s "$bin")
  mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
  echo "| $f | $bytes | $mib |"
  if awk -v b="$bytes" -v m="$max_mib" 'BEGIN { exit !(b > m * 1048576) }'; then
    echo "build-functions: $f's bootstrap is $mib MiB, over the ${max_mib} MiB budget" >&2
    status=1
  fi
done
echo
echo "build-functions: ${#functions[@]} bootstraps in ${took}s ($target/lambda/<name>/bootstrap)"
exit $status
