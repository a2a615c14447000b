#!/usr/bin/env bash
# Package smoke test, as a user installs it: build the wheel and sdist with `python -m build`,
# install the wheel (not editable) with each extra into its own fresh virtual environment, and
# check each one from outside the source tree:
#   (none) import; `kis-async --help`; `kis-async demo` names the missing 'cli' extra (exit 2)
#   sim    a program against the bundled simulator
#   cli    `kis-async demo --duration 3` (timed from the start of `pip install`)
#   dev    `pytest examples/test_my_strategy.py`
#   docs   `mkdocs build --strict` of the docs site
# Usage: .ci/package_smoke.sh PYTHON   (run by .ci/run; needs network access to PyPI)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${1:-python3}
unset PYTHONPATH
export NO_MKDOCS_2_WARNING=1  # mkdocs-material's banner about its successor
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kis-async-package.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
PIP_QUIET=(-q --disable-pip-version-check)

fail() {
  echo "package smoke: $*" >&2
  exit 1
}

fresh_env() {  # fresh_env NAME -> prints the venv's bin directory
  "$PY" -m venv "$WORK/venv-$1"
  echo "$WORK/venv-$1/bin"
}

echo "== package: python -m build (wheel + sdist)"
TOOLS=$(fresh_env build)
"$TOOLS/python" -m pip install "${PIP_QUIET[@]}" build
"$TOOLS/python" -m build --outdir "$WORK/dist" "$ROOT" >"$WORK/build.log" 2>&1 \
  || { cat "$WORK/build.log"; fail "python -m build failed"; }
WHEEL=$(ls "$WORK"/dist/kis_async-*.whl)
SDIST=$(ls "$WORK"/dist/kis_async-*.tar.gz)
echo "   built $(basename "$WHEEL") and $(basename "$SDIST")"
tar tzf "$SDIST" >"$WORK/sdist.txt"
grep -q "/kis_async/py.typed$" "$WORK/sdist.txt" || fail "sdist lacks kis_async/py.typed"

# Every check runs in an empty directory, so the installed package is imported, not ./kis_async.
RUN_DIR="$WORK/run"
mkdir -p "$RUN_DIR"
cd "$RUN_DIR"
export XDG_CACHE_HOME="$WORK/cache"
for name in $(env | sed -n 's/^\(KIS_[A-Z_]*\)=.*/\1/p'); do unset "$name"; done

check_installed() {  # check_installed BIN: kis_async comes from the venv, not the checkout
  "$1/python" - <<'PY'
import kis_async, sys
where = kis_async.__file__
assert where.startswith(sys.prefix), f"kis_async imported from {where}, not the installed wheel"
print(f"   kis_async {kis_async.__version__} from {where}")
PY
  "$1/kis-async" --help >/dev/null || fail "kis-async --help failed"
}

echo "== package: wheel without extras"
BIN=$(fresh_env base)
"$BIN/pip" install "${PIP_QUIET[@]}" "$WHEEL"
check_installed "$BIN"
set +e
"$BIN/kis-async" demo --duration 3 >"$WORK/base.out" 2>"$WORK/base.err"
code=$?
set -e
expected="error: kis-async demo needs the 'cli' extra: pip install 'kis-async[cli]'"
[ "$code" -eq 2 ] || fail "demo without the cli extra exited $code, expected 2"
[ "$(cat "$WORK/base.err")" = "$expected" ] || {
  cat "$WORK/base.err"
  fail "demo without the cli extra did not print the one-line hint"
}
echo "   kis-async demo without [cli]: exit 2, '$expected'"

echo "== package: wheel[sim]"
BIN=$(fresh_env sim)
"$BIN/pip" install "${PIP_QUIET[@]}" "$WHEEL[sim]"
check_installed "$BIN"
"$BIN/python" - <<'PY'
import asyncio

from kis_async import KISBroker, Mode
from kis_async.sim import KISSimulator


async def main() -> None:
    async with KISSimulator(seed=1, mode=Mode.PAPER).serve(port=0) as sim:
        async with KISBroker(sim.config()) as broker:
            snapshot = await broker.get_price("005930")
            assert snapshot.price > 0
            print(f"   simulator answered: 005930 at {snapshot.price}")


asyncio.run(main())
PY

echo "== package: wheel[cli], then kis-async demo --duration 3"
started=$(date +%s%N)
BIN=$(fresh_env cli)
"$BIN/pip" install "${PIP_QUIET[@]}" "$WHEEL[cli]"
"$BIN/kis-async" demo --duration 3 >"$WORK/demo.out" 2>"$WORK/demo.err" || {
  cat "$WORK/demo.out" "$WORK/demo.err"
  fail "kis-async demo failed"
}
finished=$(date +%s%N)
grep -q "^summary: " "$WORK/demo.out" || fail "the demo printed no summary"
check_installed "$BIN"
echo "   $(tail -n 1 "$WORK/demo.out")"
elapsed_ms=$(((finished - started) / 1000000))
printf '   fresh venv + pip install kis-async[cli] + demo --duration 3: %d.%01d s\n' \
  $((elapsed_ms / 1000)) $((elapsed_ms % 1000 / 100))

echo "== package: wheel[dev], then pytest examples/test_my_strategy.py"
BIN=$(fresh_env dev)
"$BIN/pip" install "${PIP_QUIET[@]}" "$WHEEL[dev]"
check_installed "$BIN"
cp "$ROOT/examples/test_my_strategy.py" "$RUN_DIR/"
"$BIN/python" -m pytest -q -p no:cacheprovider -o asyncio_default_fixture_loop_scope=function \
  test_my_strategy.py | tail -n 1

echo "== package: wheel[docs], then mkdocs build --strict"
BIN=$(fresh_env docs)
"$BIN/pip" install "${PIP_QUIET[@]}" "$WHEEL[docs]"
check_installed "$BIN"
(cd "$ROOT" && "$BIN/mkdocs" build --strict --quiet --site-dir "$WORK/site") \
  || fail "mkdocs build --strict failed"
[ -f "$WORK/site/index.html" ] && [ -d "$WORK/site/reference" ] || fail "the site is incomplete"
echo "   docs site built ($(find "$WORK/site" -name '*.html' | wc -l) pages)"
echo "== package: done"
