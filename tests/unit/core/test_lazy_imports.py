"""``import kis_async`` defers its submodules; every public name still imports as before."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own interpreter)
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )


def test_import_kis_async_loads_no_heavy_dependency() -> None:
    """A bare ``import kis_async`` loads neither httpx, pydantic, SQLite nor cryptography."""
    proc = _run(
        "import sys, kis_async\n"
        "heavy = [m for m in ('httpx', 'pydantic', 'sqlite3', 'cryptography', 'websockets',\n"
        "                     'kis_async.sim', 'kis_async.cli', 'kis_async.mock')\n"
        "         if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_broker_import_defers_sqlite_until_a_sqlite_journal_is_made() -> None:
    """Importing the broker and SQLiteJournal loads sqlite3 only once a journal is created."""
    proc = _run(
        "import sys, tempfile\n"
        "from kis_async import KISBroker, SQLiteJournal\n"
        "before = 'sqlite3' in sys.modules\n"
        "import asyncio\n"
        "async def main():\n"
        "    with tempfile.TemporaryDirectory() as d:\n"
        "        j = SQLiteJournal(d + '/j.db')\n"
        "        await j.open()\n"
        "        await j.aclose()\n"
        "asyncio.run(main())\n"
        "print(before, 'sqlite3' in sys.modules)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "True"]


def test_every_public_name_imports_and_is_the_submodule_object() -> None:
    """``from kis_async import X`` gives the defining module's object for every name."""
    import importlib

    import kis_async

    for name in kis_async.__all__:
        value = getattr(kis_async, name)
        if name == "__version__":
            assert isinstance(value, str)
            continue
        module, _, attribute = kis_async._LAZY[name].partition(":")
        assert value is getattr(importlib.import_module(module), attribute or name), name
    assert set(kis_async.__all__) <= set(dir(kis_async))


def test_unknown_attribute_raises_attribute_error() -> None:
    """A name kis_async does not export raises AttributeError, not ImportError."""
    import kis_async

    with pytest.raises(AttributeError, match="no attribute 'NotAThing'"):
        kis_async.NotAThing  # noqa: B018
