#!/usr/bin/env bash
# Installs what Exam Bank Desktop needs for PURPOSE (build, run, test or bundle) on Debian 12,
# and says what it installs. Safe to run again: it only installs what is missing.
set -euo pipefail

purpose=${1:-test}
root=$(cd "$(dirname "$0")/.." && pwd)
say() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[bootstrap]\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root to run: $*"; fi
}

# --- Debian packages -------------------------------------------------------------------
build_pkgs=(build-essential pkg-config curl file libwebkit2gtk-4.1-dev libxdo-dev libssl-dev
  libayatana-appindicator3-dev librsvg2-dev)
run_pkgs=(xvfb xauth x11-utils dbus imagemagick)
# Xorg's dummy driver and xrandr: a display a test can plug in and out (Xvfb has one output).
# poppler-utils (pdftotext) and python3-aiosmtpd (a local SMTP sink): the server's report tests.
test_pkgs=(xvfb xauth webkit2gtk-driver dbus gnome-keyring libsecret-tools dunst imagemagick python3-xlib
  chromium xserver-xorg-core xserver-xorg-video-dummy x11-xserver-utils poppler-utils python3-aiosmtpd)
case "$purpose" in
  build|bundle) wanted=("${build_pkgs[@]}") ;;
  run) wanted=("${build_pkgs[@]}" "${run_pkgs[@]}") ;;
  test) wanted=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  *) die "usage: bootstrap.sh build|run|test|bundle" ;;
esac
command -v node >/dev/null || wanted+=(nodejs npm)

missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Toolchains ------------------------------------------------------------------------
command -v cargo >/dev/null || die "Rust is missing: install it with rustup (https://rustup.rs); Debian's rustc is too old"
rust_minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
[ "$rust_minor" -ge 95 ] || die "Rust 1.95 or newer is needed (found $(rustc --version)): run 'rustup update'"
node_major=$(node --version | sed -E 's/^v([0-9]+).*/\1/')
[ "$node_major" -ge 18 ] || die "Node.js 18 or newer is needed (found $(node --version))"
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    say "installing the Rust component $component"
    rustup component add "$component"
  fi
done

# --- tauri-driver (end-to-end tests drive the real app through it) -----------------------
if [ "$purpose" = test ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
  if ! cargo install --list 2>/dev/null | grep -q '^tauri-driver v2\.1\.0'; then
    say "installing tauri-driver 2.1.0 (cargo install, about a minute)"
    cargo install tauri-driver@2.1.0 --locked --quiet
  fi
fi

# --- npm packages, exactly as locked ------------------------------------------------------
lock_sum=$(sha256sum "$root/ui/package-lock.json" | cut -d' ' -f1)
stamp="$root/ui/node_modules/.exam-desktop-lock"
if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
  say "installing npm packages (npm ci in ui/)"
  (cd "$root/ui" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_sum" > "$stamp"
fi
