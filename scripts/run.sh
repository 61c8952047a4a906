#!/usr/bin/env bash
# `make run`: installs what is missing, builds, starts the reference server on loopback and
# the app pointed at it. Without $DISPLAY it runs under Xvfb, saves a screenshot and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
port=${EXAM_SERVER_PORT:-8787}
shot=target/screenshots/make-run.png

bash scripts/bootstrap.sh run
echo "[run] building the UI and the binaries"
npm --prefix ui run build --silent
cargo build --locked -p exam-server -p exam-desktop

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

mkdir -p target/demo
# The demo's admin token: made once, readable by this user only, never on a command line.
if [ -z "${EXAM_SERVER_ADMIN_TOKEN:-}" ]; then
  if [ ! -s target/demo/admin-token ]; then
    (umask 077; od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > target/demo/admin-token)
  fi
  export EXAM_SERVER_ADMIN_TOKEN_FILE=$PWD/target/demo/admin-token
fi
target/debug/exam-server --listen "127.0.0.1:$port" --db target/demo/exam-server.db --demo &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" && break
  sleep 0.1
done
curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" || { echo "[run] exam-server did not start" >&2; exit 1; }
echo "[run] exam-server is up at http://127.0.0.1:$port (demo students student1…student30, password: demo;"
echo "[run]   admin API token in ${EXAM_SERVER_ADMIN_TOKEN_FILE:-\$EXAM_SERVER_ADMIN_TOKEN}, database target/demo/exam-server.db)"

if [ -n "${DISPLAY:-}" ]; then
  echo "[run] starting Exam Bank Desktop on $DISPLAY (close the window to stop)"
  target/debug/exam-desktop --server "http://127.0.0.1:$port"
  exit 0
fi

echo "[run] no \$DISPLAY: running under Xvfb to take a screenshot"
exec 3< <(Xvfb -displayfd 1 -screen 0 1280x800x24 -nolisten tcp 2>/dev/null)
pids+=($!)
read -r -t 20 number <&3 || { echo "[run] Xvfb did not start" >&2; exit 1; }
export DISPLAY=":$number" WEBKIT_DISABLE_DMABUF_RENDERER=1
target/debug/exam-desktop --server "http://127.0.0.1:$port" &
pids+=($!)
for _ in $(seq 1 300); do
  xwininfo -root -tree 2>/dev/null | grep -q '"Exam Bank Desktop"' && break
  sleep 0.1
done
sleep 3 # let the page load and paint
mkdir -p "$(dirname "$shot")"
import -window root "$shot"
echo "[run] screenshot saved to $shot"
