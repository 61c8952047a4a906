#!/usr/bin/env bash
# Prints the memory of the running app, all its processes together (the app and WebKit's
# web and network processes): RSS and PSS, as /proc reports them.
# Usage: scripts/measure-memory.sh [path/to/exam-desktop]   (default: target/release/exam-desktop)
set -euo pipefail
cd "$(dirname "$0")/.."
app=${1:-target/release/exam-desktop}
[ -x "$app" ] || { echo "no $app: build it first (make bundle, or cargo build)" >&2; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
data=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT

cargo build --quiet -p exam-server
target/debug/exam-server --listen "127.0.0.1:$port" --db "$data/server.db" --demo >/dev/null 2>&1 &
pids+=($!)
exec 3< <(Xvfb -displayfd 1 -screen 0 1280x800x24 -nolisten tcp 2>/dev/null)
pids+=($!)
read -r -t 20 number <&3
export DISPLAY=":$number" WEBKIT_DISABLE_DMABUF_RENDERER=1
start=$(date +%s%N)
"$app" --server "http://127.0.0.1:$port" --data-dir "$data/app" 2>/dev/null &
app_pid=$!
pids+=($app_pid)
until xwininfo -root -tree 2>/dev/null | grep -q '"Exam Bank Desktop"'; do sleep 0.05; done
echo "window mapped $(( ($(date +%s%N) - start) / 1000000 )) ms after launch"
sleep 5 # settle: the page loads and renders

tree() { echo "$1"; for child in $(pgrep -P "$1"); do tree "$child"; done; }
rss=0; pss=0
for pid in $(tree "$app_pid"); do
  [ -r "/proc/$pid/smaps_rollup" ] || continue
  name=$(cat "/proc/$pid/comm")
  r=$(awk '/^Rss:/ {print $2}' "/proc/$pid/smaps_rollup")
  p=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup")
  printf '  %-24s pid %-7s RSS %6d KiB  PSS %6d KiB\n' "$name" "$pid" "$r" "$p"
  rss=$((rss + r)); pss=$((pss + p))
done
printf 'all processes: RSS %d MiB, PSS %d MiB (budget: PSS < 333 MB)\n' $((rss / 1024)) $((pss / 1024))
