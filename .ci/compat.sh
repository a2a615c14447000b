#!/usr/bin/env bash
# Compatibility suite (tests/compat): other KIS clients, unmodified but for their URLs, against
# `kis-async sim`. A separate venv gets the wheel of this checkout with the `sim` extra (so the
# console script is the packaged one) and the pinned peers of tests/compat/requirements.txt;
# kis_async never imports them. The runs go side by side (one simulator each; COMPAT_JOBS=1 runs
# them one at a time). Prints a step table per client and mode.
# COMPAT_SESSION_SECONDS=180 runs the 3-minute session flow (default 30 s, several PINGPONGs).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python3.11}
ENV_DIR=.venv-compat
rm -rf "$ENV_DIR" dist-compat
"$PY" -m venv "$ENV_DIR"
"$ENV_DIR/bin/python" -m pip wheel -q --disable-pip-version-check --no-deps -w dist-compat .
wheel=$(ls dist-compat/kis_async-*.whl)
"$ENV_DIR/bin/python" -m pip install -q --disable-pip-version-check "${wheel}[sim]"
"$ENV_DIR/bin/python" -m pip install -q --disable-pip-version-check -r tests/compat/requirements.txt
"$ENV_DIR/bin/python" tests/compat/run.py
