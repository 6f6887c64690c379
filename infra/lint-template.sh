#!/usr/bin/env bash
# Lints template.yaml with the pinned tools that infra/setup.sh installs into .tools/venv:
#   1. cfn-lint on the raw template (SAM resources are transformed by cfn-lint itself);
#   2. `sam validate --lint`, SAM CLI's own validation plus cfn-lint.
# Exits non-zero on any finding (error, warning or informational) or if a tool is missing.
# Usage: bash infra/lint-template.sh [template]   (default: template.yaml at the repo root)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools=${REALTIME_TOOLS_DIR:-$root/.tools}
bin="$tools/venv/bin"
template=${1:-$root/template.yaml}

for tool in cfn-lint sam; do
  if [ ! -x "$bin/$tool" ]; then
    echo "lint-template: $bin/$tool is missing; run: bash infra/setup.sh" >&2
    exit 2
  fi
done

# No AWS account is needed: keep the tools offline and quiet.
export SAM_CLI_TELEMETRY=0
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}

status=0

echo "lint-template: cfn-lint $template"
# --format parseable: one line per finding; any finding makes cfn-lint exit non-zero.
if ! "$bin/cfn-lint" --regions us-east-1 --include-checks I --format parseable -- "$template"; then
  echo "lint-template: cfn-lint reported findings" >&2
  status=1
fi

echo "lint-template: sam validate --lint $template"
if ! "$bin/sam" validate --lint --region us-east-1 --template-file "$template"; then
  echo "lint-template: sam validate --lint failed" >&2
  status=1
fi

if [ "$status" -eq 0 ]; then
  echo "lint-template: $template is clean"
fi
exit "$status"
