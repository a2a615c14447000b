"""`python3 dev.py example NAME` runs an example (a test_* one under pytest) in the dev env."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dev(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[ModuleType, list[str]]:
    """dev.py with its virtual environment replaced by this interpreter (already set up)."""
    spec = importlib.util.spec_from_file_location("dev_script", ROOT / "dev.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    extras: list[str] = []

    def ensure_env(extra: str) -> Path:
        extras.append(extra)
        return Path(sys.executable)

    monkeypatch.setattr(module, "_ensure_env", ensure_env)
    for name in list(os.environ):
        if name.startswith("KIS_"):
            monkeypatch.delenv(name)  # the examples pick the simulator
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return module, extras


def test_example_by_name_runs_the_script(
    dev: tuple[ModuleType, list[str]], capfd: pytest.CaptureFixture[str]
) -> None:
    """`example quickstart` runs examples/quickstart.py with the cli extra; exit 0."""
    module, extras = dev
    assert module.main(["example", "quickstart"]) == 0
    assert extras == ["cli"]
    out = capfd.readouterr().out
    assert "embedded simulator" in out
    assert "cash " in out


def test_test_example_runs_under_pytest_with_the_dev_extra(
    dev: tuple[ModuleType, list[str]], capfd: pytest.CaptureFixture[str]
) -> None:
    """`example test_my_strategy` runs the module under pytest, which needs the dev extra."""
    module, extras = dev
    assert module.main(["example", "examples/test_my_strategy.py", "-p", "no:cacheprovider"]) == 0
    assert extras == ["dev"]
    assert "4 passed" in capfd.readouterr().out


def test_unknown_or_missing_example_lists_the_names(
    dev: tuple[ModuleType, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """No name or a wrong one: exit 2 and the list of examples, nothing run."""
    module, extras = dev
    assert module.main(["example"]) == 2
    assert module.main(["example", "nope"]) == 2
    err = capsys.readouterr().err
    assert "quickstart" in err
    assert "no example 'nope'" in err
    assert extras == []
