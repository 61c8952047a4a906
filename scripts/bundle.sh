#!/usr/bin/env bash
# `make bundle`: release installers with the Tauri CLI, for the formats this platform's
# tools can make (Linux: .deb and .rpm; AppImage with BUNDLES=appimage where linuxdeploy
# can be downloaded; Windows: MSI and NSIS; macOS: .app and DMG).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/bootstrap.sh bundle
case "$(uname -s)" in
  Linux) default=deb,rpm ;;
  Darwin) default=app,dmg ;;
  *) default=msi,nsis ;;
esac
bundles=${BUNDLES:-$default}
echo "[bundle] building release installers: $bundles"
ui/node_modules/.bin/tauri build --ci --bundles "$bundles"
find target/release/bundle -maxdepth 2 -type f \( -name '*.deb' -o -name '*.rpm' -o -name '*.AppImage' -o -name '*.msi' -o -name '*.exe' -o -name '*.dmg' \) -exec ls -lh {} \;
