#!/usr/bin/env bash
# `make test-update`: a full update of an installed app, as a lab computer gets one.
#
# Builds the app twice in release mode — the installed version (the workspace's) and a
# newer one (the same sources, bundle version raised) —, both trusting a throw-away minisign
# key made here and signed with it the way `make bundle` signs releases; installs the first
# `.deb` with dpkg, publishes the second in the reference server's `--updates-dir`, starts the
# installed app under Xvfb as an IT-managed (root) install would run, and waits until the
# updater has checked, verified, installed the newer `.deb` and restarted into it. Then a
# release signed with another key is published and must be refused. Run as root (dpkg);
# long (two release builds), so not part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
[ "$(id -u)" = 0 ] || { echo "[test-update] needs root (dpkg -i)"; exit 2; }
bash scripts/bootstrap.sh bundle
command -v sudo >/dev/null || apt-get install -y -q sudo >/dev/null

# TEST_UPDATE_WORK=DIR reuses the keys and packages an earlier run left in DIR.
work=${TEST_UPDATE_WORK:-$(mktemp -d /tmp/exam-desktop-update.XXXXXX)}
package=""
server_pid=""; app_pid=""; xvfb_pid=""
cleanup() {
  [ -n "$app_pid" ] && kill "$app_pid" 2>/dev/null || true
  pkill -x exam-desktop 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  [ -n "$xvfb_pid" ] && kill "$xvfb_pid" 2>/dev/null || true
  [ -n "$package" ] && dpkg --purge "$package" >/dev/null 2>&1 || true
}
trap cleanup EXIT
tauri=ui/node_modules/.bin/tauri
current=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
IFS=. read -r major minor patch <<<"$current"
next="$major.$minor.$((patch + 1))"
echo "[test-update] installed $current, update $next, work folder $work"

# Throw-away keys: the release key and another one.
for name in release other; do
  [ -f "$work/$name.key" ] || "$tauri" signer generate --ci -p "" -w "$work/$name.key" >/dev/null
done
pubkey=$(cat "$work/release.key.pub")
export TAURI_SIGNING_PRIVATE_KEY="$work/release.key" TAURI_SIGNING_PRIVATE_KEY_PASSWORD=""

build() { # version → the .deb path
  local version=$1 config
  [ -f "$work/exam-desktop_${version}_amd64.deb.sig" ] && return
  config=$(printf '{"version":"%s","bundle":{"createUpdaterArtifacts":true},"plugins":{"updater":{"pubkey":"%s","dangerousInsecureTransportProtocol":true}}}' "$version" "$pubkey")
  "$tauri" build --ci --bundles deb --config "$config" >"$work/build-$version.log" 2>&1 \
    || { tail -40 "$work/build-$version.log"; exit 1; }
  cp "target/release/bundle/deb/Exam Bank Desktop_${version}_amd64.deb" "$work/exam-desktop_${version}_amd64.deb"
  cp "target/release/bundle/deb/Exam Bank Desktop_${version}_amd64.deb.sig" "$work/exam-desktop_${version}_amd64.deb.sig"
}
start=$(date +%s)
echo "[test-update] building $current and $next (release)…"
build "$current"
build "$next"
echo "[test-update] built in $(( $(date +%s) - start )) s"

# The newer version, published for Debian packages on the stable channel.
publish() { # version sig-file
  local dir="$work/updates/stable/$1"
  mkdir -p "$dir"
  cp "$work/exam-desktop_$1_amd64.deb" "$dir/"
  cp "$2" "$dir/exam-desktop_$1_amd64.deb.sig"
  printf '{"notes":"Test release %s","pub_date":"2026-12-01T08:00:00Z","platforms":{"linux-x86_64-deb":{"url":"exam-desktop_%s_amd64.deb"}}}\n' "$1" "$1" >"$dir/manifest.json"
}
rm -rf "$work/updates" "$work/data" "$work/app.log"
publish "$next" "$work/exam-desktop_${next}_amd64.deb.sig"

package=$(dpkg-deb -f "$work/exam-desktop_${current}_amd64.deb" Package)
installed() { dpkg-query -W -f='${Version}' "$package" 2>/dev/null; }
dpkg -i "$work/exam-desktop_${current}_amd64.deb" >/dev/null
echo "[test-update] installed: $package $(installed)"

cargo build -q -p exam-server
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
target/debug/exam-server --db "$work/server.db" --listen "127.0.0.1:$port" --demo \
  --demo-opens-in 259200 --updates-dir "$work/updates" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done

Xvfb :97 -screen 0 1280x800x24 >/dev/null 2>&1 &
xvfb_pid=$!
run_app() {
  DISPLAY=:97 WEBKIT_DISABLE_DMABUF_RENDERER=1 LIBGL_ALWAYS_SOFTWARE=1 \
    EXAM_DESKTOP_SERVER="http://127.0.0.1:$port/" EXAM_DESKTOP_DATA_DIR="$work/data" \
    dbus-run-session -- /usr/bin/exam-desktop >>"$work/app.log" 2>&1 &
  app_pid=$!
}
status() { python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["current"], s["phase"]["phase"], json.dumps(s["phase"]))' "$work/data/update.json" 2>/dev/null || echo "none"; }
run_app
start=$(date +%s)
until [ "$(installed)" = "$next" ] && status | grep -q "^$next "; do
  if [ $(( $(date +%s) - start )) -gt 180 ]; then
    echo "[test-update] FAILED: still $(installed); status: $(status)"
    tail -30 "$work/app.log"; exit 1
  fi
  sleep 1
done
echo "[test-update] updated to $(installed) in $(( $(date +%s) - start )) s; the app restarted into it: $(status)"

# A release signed with another key is refused; the installed version stays.
pkill -x exam-desktop || true; sleep 2
newest="$major.$minor.$((patch + 2))"
cp "$work/exam-desktop_${current}_amd64.deb" "$work/exam-desktop_${newest}_amd64.deb"
env -u TAURI_SIGNING_PRIVATE_KEY "$tauri" signer sign -f "$work/other.key" -p "" "$work/exam-desktop_${newest}_amd64.deb" >/dev/null 2>&1
publish "$newest" "$work/exam-desktop_${newest}_amd64.deb.sig"
run_app
start=$(date +%s)
until status | grep -q '"update.bad_signature"'; do
  if [ $(( $(date +%s) - start )) -gt 120 ]; then
    echo "[test-update] FAILED: a wrongly signed release was not refused: $(status)"; exit 1
  fi
  sleep 1
done
[ "$(installed)" = "$next" ] || { echo "[test-update] FAILED: the version changed"; exit 1; }
echo "[test-update] a release signed with another key was refused: $(status)"
echo "[test-update] passed"
