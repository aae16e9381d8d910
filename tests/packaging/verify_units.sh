#!/usr/bin/env bash
# The systemd units in packaging/systemd/ as systemd itself reads them: `systemd-analyze verify`
# must accept each with no complaint at all (it exits 0 even for a directive it ignores, so any
# output fails), with ExecStart pointing at the binary just built.
# Usage: verify_units.sh SOURCE_DIR SHEPHERD_BINARY. Exit 77 (skip) without systemd-analyze.
set -euo pipefail
src=$1 binary=$2
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "skip: systemd-analyze not installed (Debian package systemd; scripts/install-deps has it)"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for unit in "$src"/packaging/systemd/*.service; do
  sed "s#/usr/local/bin/shepherd#$binary#g" "$unit" >"$work/$(basename "$unit")"
done
out=$(systemd-analyze verify "$work"/*.service 2>&1) || { echo "$out"; exit 1; }
if [[ -n "$out" ]]; then
  echo "systemd-analyze complained:"
  echo "$out"
  exit 1
fi
# What the agent's code relies on (src/agent/task_runner.hpp): systemd signals the agent alone, and
# the restarted agent finds and ends the tasks it left.
grep -qx 'KillMode=process' "$src/packaging/systemd/shepherd-agent.service" ||
  { echo "shepherd-agent.service must keep KillMode=process"; exit 1; }
echo "ok: $(ls "$work" | tr '\n' ' ')"
