#!/usr/bin/env bash
# The reference server against its own OpenAPI document: schemathesis (`--checks all`) on the
# `/openapi.json` of a running `exam-server --demo`, once with a student's access token and once
# with the admin token, each on a fresh server and database. Any failure fails the script.
#
#   SCHEMATHESIS_EXAMPLES  examples per operation and phase (default 100)
#   SCHEMATHESIS_SEED      the run's seed (default fixed, so a run is reproducible; `random` for
#                          a new one, printed in the summary so a failure can be replayed)
#
# Its settings and hooks (contract rules no schema can state) are in
# crates/exam-server/tests/schemathesis/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export PATH="$HOME/.cargo/bin:$PATH"

version=4.32.5
venv=$root/target/schemathesis-venv
config=$root/crates/exam-server/tests/schemathesis
examples=${SCHEMATHESIS_EXAMPLES:-100}
seed=${SCHEMATHESIS_SEED:-20261201}
[ "$seed" = random ] && seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')

# --- schemathesis, pinned, in a venv of its own ------------------------------------------
if [ "$("$venv/bin/st" --version 2>/dev/null)" != "st, version $version" ]; then
  echo "installing schemathesis $version in $venv"
  if ! python3 -m venv --clear "$venv" >/dev/null 2>&1; then
    # Debian's python3 keeps venv (ensurepip) in a package of its own.
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv --clear "$venv"
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

# --- the server ------------------------------------------------------------------------------
cargo build -p exam-server --locked --quiet
server=$root/target/debug/exam-server
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
admin_token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')

# Starts a demo server on a free port with database $work/NAME.db; sets `url`. Rate limits and
# lockouts are off: the cargo tests check them, and here they would turn most of a run into
# 429s (the fuzzer's sign-ins with made-up passwords lock 127.0.0.1 out of sign-in, its
# requests without a token lock it out of the admin API).
start_server() {
  local name=$1
  EXAM_SERVER_ADMIN_TOKEN=$admin_token RUST_LOG=warn "$server" --listen 127.0.0.1:0 --demo \
    --db "$work/$name.db" --user-rate 0 --ip-rate 0 --lockout-failures 1000000 \
    --lockout-user-failures 1000000 --lockout-ip-failures 1000000 \
    --admin-lockout-failures 1000000 >"$work/$name.out" 2>"$work/$name.log" &
  pids+=("$!")
  # (The output file may not exist yet right after the server was started.)
  for _ in $(seq 300); do
    url=$(sed -n 's/^listening on //p' "$work/$name.out" 2>/dev/null || true)
    [ -n "$url" ] && return 0
    sleep 0.1
  done
  echo "exam-server did not start:" >&2
  cat "$work/$name.log" >&2
  return 1
}

# Runs schemathesis against the server at $url with TOKEN; the report goes to $work/NAME.txt.
run() {
  local name=$1 token=$2
  # In $work, so schemathesis' own files stay out of the repository.
  (cd "$work" && SCHEMATHESIS_HOOKS=$config/hooks.py timeout 600 "$venv/bin/st" \
    --config-file "$config/schemathesis.toml" run "$url/openapi.json" \
    --checks all --max-examples "$examples" --seed "$seed" --generation-database none \
    --request-timeout 10 --header "Authorization: Bearer $token" --no-color \
    >"$work/$name.txt" 2>&1)
}

start_server student
student_token=$(curl -sf -d grant_type=password -d username=student1 -d password=demo \
  -d client_id=exam-desktop "$url/oauth/token" | sed -nE 's/.*"access_token":"([^"]+)".*/\1/p') || true
[ -n "$student_token" ] || { echo "student1 could not sign in to $url" >&2; exit 1; }
# The two runs go side by side, each with a server of its own (2 cores: one each).
run student "$student_token" &
student_run=$!
start_server admin
run admin "$admin_token" &
admin_run=$!

status=0
summary() {
  local name=$1 rc=$2 report=$work/$1.txt
  # The closing line, e.g. "=== 3 warnings in 41.2s ===" or "=== 2 failures, 3 warnings in 40.1s ===".
  local closing cases
  closing=$(grep -E '^=+ .* in [0-9.]+s =+$' "$report" | tail -1 | sed -E 's/^=+ (.*) =+$/\1/') || true
  cases=$(grep -Eo '[0-9]+ generated' "$report" | tail -1) || true
  case "$closing" in *failure* | *error*) ;; *) closing="0 failures, $closing" ;; esac
  printf 'schemathesis %-7s %s; %s test cases; seed %s; exit %s\n' \
    "$name:" "$closing" "${cases% generated}" "$seed" "$rc"
  if [ "$rc" -ne 0 ]; then
    status=1
    sed -n '/^=* FAILURES =*$/,/^=* WARNINGS =*$/p;/^=* ERRORS =*$/,/^=* WARNINGS =*$/p' "$report" |
      grep -v '^[[:space:]]*$' | head -200 >&2
    [ -s "$report" ] && tail -20 "$report" >&2
  fi
}
rc=0; wait "$student_run" || rc=$?; summary student "$rc"
rc=0; wait "$admin_run" || rc=$?; summary admin "$rc"
exit $status
