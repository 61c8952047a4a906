#!/usr/bin/env bash
# Checks tauri.conf.json before anything is bundled, and fails on a config the installers
# would be wrong with:
#   - valid against the Tauri CLI's own schema (ui/node_modules/@tauri-apps/cli/
#     config.schema.json: the CLI version package-lock.json pins, the one `make bundle` runs);
#   - every file the bundle section names exists (icons, maintainer scripts, NSIS hooks,
#     entitlements, WiX fragments), and the Linux maintainer scripts parse (`sh -n`);
#   - `plugins.updater`, which no Tauri schema covers, holds only keys the updater plugin
#     reads and a Windows install mode it knows;
#   - the MSI upgrade code is the one every release so far carried: a new one would make
#     Windows install a second copy beside the old instead of upgrading it.
# Uses python3's jsonschema, or installs it in a venv under target/ if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

schema=ui/node_modules/@tauri-apps/cli/config.schema.json
[ -f "$schema" ] || { echo "[bundle-config] $schema is missing: run 'bash scripts/bootstrap.sh build' first" >&2; exit 1; }

python=python3
if ! python3 -c 'import jsonschema' 2>/dev/null; then
  venv=$root/target/jsonschema-venv
  if ! "$venv/bin/python" -c 'import jsonschema' 2>/dev/null; then
    echo "[bundle-config] installing jsonschema in $venv"
    if ! python3 -m venv --clear "$venv" >/dev/null 2>&1; then
      # Debian's python3 keeps venv (ensurepip) in a package of its own.
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv --clear "$venv"
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check "jsonschema==4.26.0"
  fi
  python=$venv/bin/python
fi

"$python" - "$schema" tauri.conf.json <<'PY'
import json
import subprocess
import sys
from pathlib import Path

import jsonschema

# Tauri's default for this product name (uuid5 of DNS, "Exam Bank Desktop.exe.app.x64"),
# written down so that renaming the product cannot change it.
UPGRADE_CODE = "36d4d630-b010-5d8e-8b82-00a05e6daaae"
UPDATER_KEYS = {
    "pubkey", "endpoints", "windows", "dangerousInsecureTransportProtocol",
    "dangerousAcceptInvalidCerts", "dangerousAcceptInvalidHostnames",
}
UPDATER_WINDOWS_KEYS = {"installMode", "installerArgs"}
UPDATER_INSTALL_MODES = {"passive", "basicUi", "quiet"}

schema_path, config_path = sys.argv[1], Path(sys.argv[2])
schema = json.load(open(schema_path))
config = json.load(open(config_path))
problems = []

def explain(error):
    """A oneOf/anyOf failure says little by itself ("is not valid under any of the given
    schemas"): follow the alternative that got deepest into the value, which names the key."""
    def allowed(errors):
        values = [v for e in errors if e.validator in ("enum", "const")
                  for v in (e.validator_value if e.validator == "enum" else [e.validator_value])]
        return f": one of {', '.join(json.dumps(v) for v in values)}" if values else ""

    while error.context:
        depth = max(len(e.absolute_path) for e in error.context)
        deepest = [e for e in error.context if len(e.absolute_path) == depth]
        if depth <= len(error.absolute_path) or len(deepest) > 1:
            first = deepest[0] if depth > len(error.absolute_path) else error
            return first.absolute_path, (
                f"{json.dumps(first.instance)} is none of the allowed forms{allowed(deepest)}")
        error = deepest[0]
    return error.absolute_path, error.message

validator = jsonschema.validators.validator_for(schema)(schema)
for error in sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path)):
    path, detail = explain(error)
    where = " > ".join(str(p) for p in path) or "(top level)"
    problems.append(f"{where}: {detail}")

base = config_path.parent
bundle = config.get("bundle", {})
linux = bundle.get("linux", {})
windows = bundle.get("windows", {})
macos = bundle.get("macOS", {})

files = [(f"bundle > icon > {i}", p) for i, p in enumerate(bundle.get("icon", []))]
for kind in ("deb", "rpm"):
    for key in ("preInstallScript", "postInstallScript", "preRemoveScript", "postRemoveScript"):
        if linux.get(kind, {}).get(key):
            files.append((f"bundle > linux > {kind} > {key}", linux[kind][key]))
nsis = windows.get("nsis") or {}
for key in ("installerHooks", "template", "installerIcon", "headerImage", "sidebarImage"):
    if nsis.get(key):
        files.append((f"bundle > windows > nsis > {key}", nsis[key]))
wix = windows.get("wix") or {}
for i, p in enumerate(wix.get("fragmentPaths", [])):
    files.append((f"bundle > windows > wix > fragmentPaths > {i}", p))
if macos.get("entitlements"):
    files.append(("bundle > macOS > entitlements", macos["entitlements"]))
for where, path in files:
    if not (base / path).is_file():
        problems.append(f"{where}: {path} does not exist")

for kind in ("deb", "rpm"):
    for key in ("preInstallScript", "postInstallScript", "preRemoveScript", "postRemoveScript"):
        path = linux.get(kind, {}).get(key)
        if path and (base / path).is_file():
            result = subprocess.run(["sh", "-n", str(base / path)], capture_output=True, text=True)
            if result.returncode != 0:
                problems.append(f"bundle > linux > {kind} > {key}: {path} does not parse: {result.stderr.strip()}")

if "msi" in (bundle.get("targets") or []) or bundle.get("targets") == "all":
    code = wix.get("upgradeCode")
    if code is None:
        problems.append("bundle > windows > wix > upgradeCode: missing (it must stay "
                        f"{UPGRADE_CODE} so that a new MSI upgrades the installed one)")
    elif code.lower() != UPGRADE_CODE:
        problems.append(f"bundle > windows > wix > upgradeCode: {code} is not {UPGRADE_CODE}; "
                        "a new upgrade code makes Windows install a second copy")

updater = config.get("plugins", {}).get("updater")
if updater is not None:
    for key in sorted(set(updater) - UPDATER_KEYS):
        problems.append(f"plugins > updater > {key}: the updater plugin has no such key")
    if not isinstance(updater.get("pubkey"), str):
        problems.append("plugins > updater > pubkey: must be a string (empty in the "
                        "repository; `make bundle` passes the release key in)")
    win = updater.get("windows") or {}
    for key in sorted(set(win) - UPDATER_WINDOWS_KEYS):
        problems.append(f"plugins > updater > windows > {key}: the updater plugin has no such key")
    mode = win.get("installMode")
    if mode is not None and mode not in UPDATER_INSTALL_MODES:
        problems.append(f"plugins > updater > windows > installMode: {mode!r} is not one of "
                        f"{', '.join(sorted(UPDATER_INSTALL_MODES))}")

if problems:
    print(f"[bundle-config] {config_path} is not valid:", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    sys.exit(1)
version = json.load(open(Path(schema_path).parent / "package.json"))["version"]
print(f"[bundle-config] {config_path} is valid against the Tauri CLI {version} schema; "
      f"{len(files)} files it names exist")
PY
