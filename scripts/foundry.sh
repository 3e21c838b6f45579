#!/usr/bin/env bash
# Run a Foundry tool (forge, anvil) from the pinned npm install, through its platform binary.
#
# Why not node_modules/.bin/forge: the npm wrapper exits 0 even when forge fails, so a failing
# Solidity test or a drifted gas snapshot could never fail `make test`. The platform binary's
# exit status is the tool's own; this script execs it, so the status passes through unchanged.
set -euo pipefail
tool=${1:?usage: scripts/foundry.sh forge|anvil [args...]}
shift
root=$(cd "$(dirname "$0")/.." && pwd)
case "$(uname -s)" in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  *) echo "foundry.sh: unsupported OS $(uname -s)" >&2; exit 127 ;;
esac
case "$(uname -m)" in
  x86_64|amd64) arch=amd64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) echo "foundry.sh: unsupported CPU $(uname -m)" >&2; exit 127 ;;
esac
exe="$root/node_modules/@foundry-rs/$tool-$os-$arch/bin/$tool"
if [ ! -x "$exe" ]; then
  echo "foundry.sh: $exe not found; run 'make bootstrap' (npm ci) first" >&2
  exit 127
fi
exec "$exe" "$@"
