#!/usr/bin/env python3
"""Developer entry point that needs nothing but Python 3.11+.

    python3 dev.py demo                 # the live demo against the embedded KIS simulator
    python3 dev.py example quickstart   # run examples/quickstart.py (any example, by name)
    python3 dev.py test                 # the test suite (pytest, branch coverage)
    python3 dev.py lint                 # ruff + mypy --strict

Each command creates ``.venv-<python version>`` beside this file on first use and installs
the project into it (editable, with the extras the command needs), then runs inside it.
Extra arguments are passed through (``python3 dev.py test -k token``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
MIN_PYTHON = (3, 11)


def _venv_dir() -> Path:
    return ROOT / f".venv-{sys.version_info.major}.{sys.version_info.minor}"


def _python(env_dir: Path) -> Path:
    if os.name == "nt":
        return env_dir / "Scripts" / "python.exe"
    return env_dir / "bin" / "python"


def _ensure_env(extras: str) -> Path:
    env_dir = _venv_dir()
    py = _python(env_dir)
    marker = env_dir / f".installed-{extras}"
    stamp = str((ROOT / "pyproject.toml").stat().st_mtime_ns)
    if not py.exists():
        print(f"dev.py: creating {env_dir.name}", file=sys.stderr, flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    if not marker.exists() or marker.read_text() != stamp:
        print(
            f"dev.py: installing kis_async[{extras}] into {env_dir.name}",
            file=sys.stderr,
            flush=True,
        )
        quiet = ["-q", "--disable-pip-version-check"]
        subprocess.run([str(py), "-m", "pip", "install", *quiet, "--upgrade", "pip"], check=True)
        subprocess.run(
            [str(py), "-m", "pip", "install", *quiet, "-e", f"{ROOT}[{extras}]"], check=True
        )
        marker.write_text(stamp)
    return py


def _examples() -> list[str]:
    return sorted(p.stem for p in (ROOT / "examples").glob("*.py") if not p.stem.startswith("_"))


def _example(argv: list[str]) -> int:
    """Run ``examples/NAME.py`` (a ``test_*`` module under pytest) in the dev.py environment."""
    names = _examples()
    if not argv:
        print("dev.py example NAME [ARGS...]; examples: " + ", ".join(names), file=sys.stderr)
        return 2
    name = argv[0].removeprefix("examples/").removesuffix(".py")
    if name not in names:
        print(f"dev.py: no example {name!r}; examples: {', '.join(names)}", file=sys.stderr)
        return 2
    script = ROOT / "examples" / f"{name}.py"
    if name.startswith("test_"):
        # A pytest module: needs the dev extra (pytest, pytest-asyncio).
        py = _ensure_env("dev")
        return subprocess.call([str(py), "-m", "pytest", "-q", str(script), *argv[1:]], cwd=ROOT)
    py = _ensure_env("cli")
    return subprocess.call([str(py), str(script), *argv[1:]], cwd=ROOT)


def main(argv: list[str]) -> int:
    if sys.version_info < MIN_PYTHON:
        print("dev.py: kis_async needs Python 3.11 or newer", file=sys.stderr)
        return 2
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "demo":
        py = _ensure_env("cli")
        return subprocess.call([str(py), "-m", "kis_async.cli", "demo", *rest], cwd=ROOT)
    if command == "example":
        return _example(rest)
    if command == "test":
        py = _ensure_env("dev")
        args = [
            str(py),
            "-m",
            "pytest",
            "--cov=kis_async",
            "--cov-branch",
            "--cov-report=term",
            *rest,
        ]
        return subprocess.call(args, cwd=ROOT)
    if command == "lint":
        py = _ensure_env("dev")
        steps = [
            [str(py), "-m", "ruff", "check", "."],
            [str(py), "-m", "ruff", "format", "--check", "."],
            [str(py), "-m", "mypy", "--strict", "kis_async"],
        ]
        for step in steps:
            code = subprocess.call(step, cwd=ROOT)
            if code:
                return code
        return 0
    print(f"dev.py: unknown command {command!r}; see python3 dev.py --help", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
