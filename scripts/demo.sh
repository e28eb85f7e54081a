#!/usr/bin/env bash
# The main job on the embedded defaults: a container made, started, used, snapshotted, stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
export DRE_ROOT="${DRE_ROOT:-/var/lib/dre}" DRE_RUNDIR="${DRE_RUNDIR:-/run/dre}"
app() { echo "+ dre-app $*"; node dist/src/bin/dre-app.js "$@"; }
name=demo-$$
trap 'node dist/src/bin/dre-app.js stop "$name" >/dev/null 2>&1; node dist/src/bin/dre-app.js destroy "$name" >/dev/null 2>&1' EXIT
app create "$name"
app start "$name"
app status "$name"
app exec "$name" -- sh -c 'echo "hello from $(hostname), init is $(cat /proc/1/comm)"; echo data > /root/file'
app list
app stop "$name"
app status "$name"
app snapshot "$name" after-first-run
app snapshots "$name"
app destroy "$name"
trap - EXIT
echo "demo: done"
