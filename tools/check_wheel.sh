#!/usr/bin/env bash
# Build the nncert wheel, install it into a fresh virtual environment and run the end-to-end
# demo from it (issue 18: "a wheel that works": bundled data included, console scripts work).
#
#   tools/check_wheel.sh            # runtime dependencies from the package index (pip)
#   tools/check_wheel.sh --offline  # wheel with --no-deps; dependencies from this Python's
#                                   # site-packages (the venv you develop in), no downloads
#
# Run from anywhere; uses $PYTHON (default python3). Exit 0 when `nncert demo --quick` passes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

echo "== building the wheel in $WORK/dist"
if "$PYTHON" -c "import build" 2>/dev/null; then
    "$PYTHON" -m build --wheel --outdir "$WORK/dist" "$ROOT" >"$WORK/build.log" 2>&1 \
        || { cat "$WORK/build.log"; exit 1; }
else
    "$PYTHON" -m pip wheel --no-deps --wheel-dir "$WORK/dist" "$ROOT" >"$WORK/build.log" 2>&1 \
        || { cat "$WORK/build.log"; exit 1; }
fi
WHEEL="$(ls "$WORK"/dist/nncert-*.whl)"
echo "   $WHEEL"
for f in nncert/verify/data/examples.json nncert/verify/data/iris_relu.onnx \
         nncert/certificates/schema.json nncert/verify/py.typed; do
    "$PYTHON" -m zipfile -l "$WHEEL" | awk '{print $1}' | grep -qx "$f" \
        || { echo "missing from the wheel: $f"; exit 1; }
done

echo "== fresh venv $WORK/venv"
"$PYTHON" -m venv "$WORK/venv"
if [[ "${1:-}" == "--offline" ]]; then
    "$WORK/venv/bin/pip" install -q --no-deps "$WHEEL"
    # the runtime dependencies of the developing venv, without its (editable) nncert
    deps="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    site="$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    echo "$deps" >"$site/runtime-deps.pth"
else
    "$WORK/venv/bin/pip" install -q "$WHEEL"
fi

cd "$WORK"  # not the checkout: the installed wheel must be what runs
"$WORK/venv/bin/python" - <<'PY'
import nncert.verify, sys
assert "/venv/" in nncert.verify.__file__, nncert.verify.__file__
print("   nncert.verify from", nncert.verify.__file__)
PY
echo "== nncert demo --quick (from the wheel)"
"$WORK/venv/bin/nncert" --version
"$WORK/venv/bin/nncert" demo --quick --quiet
echo "== wheel OK"
