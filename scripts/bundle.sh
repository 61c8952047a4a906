#!/usr/bin/env bash
# `make bundle`: release installers with the Tauri CLI, for the formats this platform's
# tools can make (Linux: .deb and .rpm; AppImage with BUNDLES=appimage where linuxdeploy
# can be downloaded; Windows: MSI and NSIS; macOS: .app and DMG). docs/deployment.md says
# how IT installs, updates and removes them.
#
# Update signing. The app installs an update only if it is signed with the release key
# (minisign) and the app was built trusting that key's public half. Both come from the
# environment, never from a file of the repository:
#   TAURI_SIGNING_PRIVATE_KEY           the private key (its text, or a path to it)
#   TAURI_SIGNING_PRIVATE_KEY_PASSWORD  its password (empty for a key made without one)
#   EXAM_DESKTOP_UPDATE_PUBKEY          the public key (the .pub file's content)
# With all of them the build trusts that key and writes a .sig beside each installer (the
# updater artifacts to publish). Without them the installers are still built, but the app
# they install trusts no key: it cannot update itself and says so (`update.no_key`), so IT's
# deployment tool must bring each new version.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
say() { printf '[bundle] %s\n' "$*"; }
die() { printf '[bundle] %s\n' "$*" >&2; exit 1; }

bash scripts/bootstrap.sh bundle
bash scripts/check-bundle-config.sh
case "$(uname -s)" in
  Linux) default=deb,rpm ;;
  Darwin) default=app,dmg ;;
  *) default=msi,nsis ;;
esac
bundles=${BUNDLES:-$default}

pubkey=${EXAM_DESKTOP_UPDATE_PUBKEY:-}
private=${TAURI_SIGNING_PRIVATE_KEY:-}
config=()
if [ -n "$pubkey" ] && [ -n "$private" ]; then
  # The .pub file's content is base64: nothing in it can break out of the JSON below.
  [[ $pubkey =~ ^[A-Za-z0-9+/=]+$ ]] \
    || die "EXAM_DESKTOP_UPDATE_PUBKEY is not a public key as 'tauri signer generate' writes it (the .pub file's base64 content)"
  say "updater artifacts: signed with the key in TAURI_SIGNING_PRIVATE_KEY; the app will trust EXAM_DESKTOP_UPDATE_PUBKEY"
  config=(--config "{\"plugins\":{\"updater\":{\"pubkey\":\"$pubkey\"}},\"bundle\":{\"createUpdaterArtifacts\":true}}")
elif [ -n "$pubkey" ]; then
  die "EXAM_DESKTOP_UPDATE_PUBKEY is set but TAURI_SIGNING_PRIVATE_KEY is not: the updater artifacts cannot be signed (set both, or neither)"
elif [ -n "$private" ]; then
  die "TAURI_SIGNING_PRIVATE_KEY is set but EXAM_DESKTOP_UPDATE_PUBKEY is not: the app would trust no key and refuse every update (set both, or neither)"
else
  say "updater artifacts: NOT signed. No release key in the environment (TAURI_SIGNING_PRIVATE_KEY,"
  say "  TAURI_SIGNING_PRIVATE_KEY_PASSWORD, EXAM_DESKTOP_UPDATE_PUBKEY), so the app these installers"
  say "  install trusts no update key: it cannot update itself (it reports update.no_key) and"
  say "  IT's deployment tool must install each new version. See docs/deployment.md, 'Signing keys'."
fi
case ",$bundles," in
  *,appimage,*) say "AppImage: the Tauri CLI downloads linuxdeploy and its plugins from GitHub (cached in ~/.cache/tauri); without access to GitHub this step fails" ;;
esac

say "building release installers: $bundles"
stamp=$(mktemp)
trap 'rm -f "$stamp"' EXIT
ui/node_modules/.bin/tauri build --ci --bundles "$bundles" "${config[@]}"
# What this build made (earlier builds' files stay in the same folders).
find target/release/bundle -maxdepth 2 -type f -newer "$stamp" \( -name '*.deb' -o -name '*.rpm' -o -name '*.AppImage' \
  -o -name '*.msi' -o -name '*.exe' -o -name '*.dmg' -o -name '*.tar.gz' -o -name '*.sig' \) -exec ls -lh {} \;
