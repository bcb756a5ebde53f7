#!/usr/bin/env bash
# Build dist/clobus-consult.pyz with shiv: the app, every dependency and gunicorn in one file that the system
# python3 runs (`python3 clobus-consult.pyz --instance DIR serve`, see clobus_consult/__main__.py).
#
#   scripts/build-pyz.sh [-o OUTPUT]
#
# The pyz holds compiled wheels (psycopg2, cffi, cryptography, ...) for the building interpreter, so it runs on
# the same CPython minor version and platform: build with Python 3.11 on x86_64 Linux for Debian 12.
#
# Environment:
#   PYTHON       the interpreter that builds (default: .venv/bin/python, else python3). Where it has the project
#                installed (the dev venv), every dependency is pinned to the version found there: the pyz holds
#                what the tests ran against.
#   WHEELHOUSE   wheels kept between builds (default ~/.cache/clobus-consult/wheelhouse). Once it holds every
#                wheel the build needs no network; otherwise the missing ones come from the package index.
#   PYZ_OFFLINE  1: never use the network (fail if the wheelhouse lacks a wheel).
set -euo pipefail

SHIV_VERSION=1.0.8
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/dist/clobus-consult.pyz
usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | cut -c3-; }
while getopts "o:h" opt; do
    case $opt in
        o) OUT=$OPTARG ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
mkdir -p "$(dirname "$OUT")"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
if [[ -z ${PYTHON:-} ]]; then
    if [[ -x $ROOT/.venv/bin/python ]]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
WHEELHOUSE=${WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/clobus-consult/wheelhouse}
start=$SECONDS
log() { printf 'build-pyz: %s\n' "$*" >&2; }

work=$(mktemp -d)
trap 'rm -rf "$work" "$OUT.tmp"' EXIT
mkdir -p "$WHEELHOUSE" "$work/src" "$work/app"

if ! "$PYTHON" -c 'import shiv' 2>/dev/null; then
    log "installing shiv $SHIV_VERSION into $("$PYTHON" -c 'import sys; print(sys.prefix)')"
    "$PYTHON" -m pip install -q "shiv==$SHIV_VERSION"
fi

# pip with the wheelhouse: offline first, then (unless PYZ_OFFLINE=1) with the index for what is missing.
pip_wheel() {
    if "$PYTHON" -m pip wheel -q --no-index --find-links "$WHEELHOUSE" "$@" 2>"$work/offline.log"; then
        return 0
    fi
    if [[ ${PYZ_OFFLINE:-0} == 1 ]]; then
        cat "$work/offline.log" >&2
        log "PYZ_OFFLINE=1 and the wheelhouse $WHEELHOUSE lacks a wheel"
        return 1
    fi
    log "fetching what $WHEELHOUSE lacks from the package index"
    # (pip's warnings about configured local index folders that do not hold a package are noise here)
    "$PYTHON" -m pip wheel -q --find-links "$WHEELHOUSE" "$@" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
}

# 1. The project's wheel, built from a copy of the source (an in-tree build could pick up stale files from
#    build/). With git: tracked and new files, not ignored ones (instance/ holds secrets, never shipped).
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done \
        | tar --null -T - -cf -) | tar -C "$work/src" -xf -
else
    tar -C "$ROOT" --exclude=./.git --exclude=./.venv --exclude=./dist --exclude=./build --exclude=./instance \
        --exclude='*.egg-info' --exclude=__pycache__ --exclude=.pytest_cache --exclude=.ruff_cache -cf - . \
        | tar -C "$work/src" -xf -
fi
"$PYTHON" - "$ROOT/pyproject.toml" >"$work/build-requires.txt" <<'EOF'
import sys, tomllib
print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["build-system"]["requires"]))
EOF
pip_wheel -w "$WHEELHOUSE" -r "$work/build-requires.txt"  # so the isolated build of step 1 finds them offline
pip_wheel --no-deps -w "$work/app" "$work/src"
app_wheel=$(echo "$work"/app/clobus_consult-*.whl)

# 2. Its dependencies, pinned to the build venv's versions when the project is installed there.
: >"$work/constraints.txt"
if "$PYTHON" -c 'import importlib.metadata as m, sys; m.distribution("clobus-consult"); sys.exit(sys.prefix == sys.base_prefix)' 2>/dev/null; then
    "$PYTHON" -m pip freeze --exclude-editable | grep -v -e ' @ ' -e '^-e ' >"$work/constraints.txt" || true
fi
pip_wheel -w "$WHEELHOUSE" --constraint "$work/constraints.txt" "$app_wheel"
rm -f "$WHEELHOUSE"/clobus_consult-*.whl  # the project's own wheel is rebuilt every time

# 3. The zipapp. The preamble stops a mismatched interpreter with a clear message (not an ImportError deep in
#    psycopg2) before anything else runs.
pyver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
cat >"$work/check_python.py" <<EOF
import sys

if "%d.%d" % sys.version_info[:2] != "$pyver":
    sys.exit("clobus-consult.pyz was built for Python $pyver (its compiled dependencies need it); "
             "this is Python %s at %s" % (sys.version.split()[0], sys.executable))
EOF
rm -f "$OUT.tmp"
"$PYTHON" -m shiv --quiet -o "$OUT.tmp" -e clobus_consult.__main__:main -p "/usr/bin/env python3" \
    --preamble "$work/check_python.py" \
    --no-index --find-links "$WHEELHOUSE" --constraint "$work/constraints.txt" --no-compile --no-warn-script-location \
    "$app_wheel" >"$work/shiv.log" 2>&1 || { cat "$work/shiv.log" >&2; exit 1; }

# 4. Smoke check with the bare interpreter (no venv, so a dependency missing from setup.cfg shows here):
#    every module of the package imports.
base_python=$("$PYTHON" -c 'import os, sys; print(os.path.join(sys.base_prefix, "bin", "python%d.%d" % sys.version_info[:2]))')
[[ -x $base_python ]] || base_python=$PYTHON
if ! env -u PYTHONPATH -u VIRTUAL_ENV SHIV_ROOT="$work/shiv" SHIV_INTERPRETER=1 \
        "$base_python" -s "$OUT.tmp" -c '
import importlib, pkgutil, clobus_consult
for m in pkgutil.walk_packages(clobus_consult.__path__, "clobus_consult."):
    if ".migrations." not in m.name:
        importlib.import_module(m.name)
import gunicorn.app.base, gunicorn.workers.gthread
' >"$work/smoke.log" 2>&1; then
    cat "$work/smoke.log" >&2
    log "smoke check failed: the pyz cannot import the app (a dependency missing from setup.cfg?)"
    exit 1
fi
mv -f "$OUT.tmp" "$OUT"
log "built $OUT ($(du -h "$OUT" | cut -f1), Python $pyver, $((SECONDS - start)) s)"
