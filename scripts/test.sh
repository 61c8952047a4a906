#!/usr/bin/env bash
# `make test`: installs what is missing, then every check and every test of the workspace,
# including the end-to-end test of the built app under Xvfb.
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
step "rust: clippy" cargo clippy --workspace --all-targets --locked -- -D warnings
step "rust: tests (incl. e2e)" cargo test --workspace --locked

printf '\n\033[1mmake test: all green\033[0m\n'
printf '  %s\n' "${summary[@]}"
