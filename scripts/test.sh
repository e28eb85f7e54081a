#!/usr/bin/env bash
# Runs the whole test suite against a private, temporary DRE_ROOT/DRE_RUNDIR, removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent lint # the formatter (prettier, .prettierrc.json): code that is not formatted fails the suite
tmp=$(mktemp -d /tmp/dre-test.XXXXXX)
chmod 711 "$tmp" # unprivileged containers' LXC passes through it as their mapped root
cleanup() { node dist/test/support/sweep.js "$tmp" || true; rm -rf "$tmp"; }
trap cleanup EXIT
export DRE_ROOT="$tmp/root" DRE_RUNDIR="$tmp/run" DRE_TEST_TMP="$tmp"
node --test --test-concurrency=1 dist/test/
