#!/usr/bin/env bash
# `make test`: installs what is missing, then every check and every test of the workspace,
# including the end-to-end test of the built app under Xvfb and the reference server's
# conformance to its OpenAPI document (scripts/schemathesis.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH" CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

bash scripts/bootstrap.sh test

summary=()
step() {
  local name=$1; shift
  printf '\n\033[1m==> %s\033[0m\n' "$name"
  local start=$SECONDS
  "$@"
  summary+=("$(printf '%-28s %4ss' "$name" $((SECONDS - start)))")
}

core_is_tauri_free() {
  if cargo tree -p exam-core -e normal,build --prefix none | grep -E '^tauri' ; then
    echo "exam-core depends on Tauri: the core must stay Tauri-free" >&2
    return 1
  fi
  echo "exam-core has no Tauri dependency"
}

step "ui: build" npm --prefix ui run build --silent
step "ui: type check" npm --prefix ui run check --silent
step "ui: unit tests" npm --prefix ui test --silent
step "rust: format" cargo fmt --all -- --check
step "rust: core is Tauri-free" core_is_tauri_free
step "bundle: tauri.conf.json" bash scripts/check-bundle-config.sh
step "rust: clippy" cargo clippy --workspace --all-targets --locked -- -D warnings
# The tests get a private D-Bus session with a fresh, unlocked gnome-keyring, so the
# keychain tests use the real Secret Service and never touch the developer's own keyring.
tests_in_private_session() {
  local keyrings
  keyrings=$(mktemp -d)
  dbus-run-session -- env XDG_DATA_HOME="$keyrings" bash -c '
    eval "$(printf %s test-keyring-password | gnome-keyring-daemon --unlock --components=secrets)" >/dev/null
    exec cargo test --workspace --locked' 2> >(grep -v "Failed to set fd limit" >&2)
  local status=$?
  rm -rf "$keyrings"
  return $status
}
step "rust: tests (incl. e2e)" tests_in_private_session
# The reference server against its own OpenAPI document, with generated requests (schemathesis,
# `--checks all`, as a student and as the admin); installs the pinned schemathesis if missing.
step "server: OpenAPI conformance" bash scripts/schemathesis.sh
# The console for proctors and IT in a real browser (Debian's chromium, playwright-core).
step "server: console in a browser" bash scripts/console-test.sh

printf '\n\033[1mmake test: all green\033[0m\n'
printf '  %s\n' "${summary[@]}"
