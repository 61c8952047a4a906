#!/usr/bin/env bash
# The console for proctors and IT in a real browser: Debian's chromium driven by
# playwright-core (pinned in crates/exam-server/tests/console), against a fresh
# `exam-server --demo`. Screenshots in target/screenshots/console-*.png.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export PATH="$HOME/.cargo/bin:$PATH"

command -v chromium >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
}
tests=$root/crates/exam-server/tests/console
[ -d "$tests/node_modules/playwright-core" ] || npm --prefix "$tests" ci --silent --no-audit --no-fund

cargo build -p exam-server --locked --quiet
work=$(mktemp -d)
token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$token" > "$work/admin-token"
chmod 600 "$work/admin-token"
"$root/target/debug/exam-server" --listen 127.0.0.1:0 --db "$work/server.db" --demo \
  --admin-token-file "$work/admin-token" > "$work/server.out" 2> "$work/server.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  addr=$(head -1 "$work/server.out" 2>/dev/null | grep -oE '127\.0\.0\.1:[0-9]+' || true)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$work/server.log"; echo "the server did not start"; exit 1; }
SERVER="http://$addr" ADMIN_TOKEN="$token" SCREENSHOTS="$root/target/screenshots" \
  node "$tests/console.test.mjs"
