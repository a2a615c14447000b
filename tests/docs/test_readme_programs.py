"""Every Python block of README.md (and of the docs site) runs.

A block is either a whole program, run here as its own process against a simulator served on
127.0.0.1 with the ``KIS_*`` variables pointing at it (exactly what a reader does with the
lines ``kis-async sim`` prints), or a fragment: its first line is a comment starting with
``# continues the program above`` and it must follow a program and compile (top-level
``await`` allowed). A program that errors, or does not finish within its time bound, fails.
"""

from __future__ import annotations

import ast
import asyncio
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from kis_async import Mode
from kis_async.sim import KISSimulator

ROOT = Path(__file__).resolve().parents[2]
FRAGMENT_MARK = "# continues the program above"
#: Seconds a program may take: the slowest makes ~12 requests at the paper limit of 2/s.
PROGRAM_TIMEOUT = 60.0
_FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    source: str

    @property
    def is_fragment(self) -> bool:
        return self.source.startswith(FRAGMENT_MARK)

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def python_blocks(path: Path) -> list[Block]:
    """The fenced ```python blocks of a Markdown file, with their first line number."""
    text = path.read_text(encoding="utf-8")
    return [
        Block(path, text.count("\n", 0, match.start(1)) + 1, match.group(1))
        for match in _FENCE.finditer(text)
    ]


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


ALL_BLOCKS = [block for path in documents() for block in python_blocks(path)]
PROGRAMS = [block for block in ALL_BLOCKS if not block.is_fragment]


def test_blocks_are_found_and_every_one_is_a_program_or_a_marked_fragment() -> None:
    """The README has programs; every block is a complete module or a fragment after one."""
    readme = [b for b in PROGRAMS if b.path.name == "README.md"]
    assert len(readme) >= 9
    for path in documents():
        previous: Block | None = None
        for block in python_blocks(path):
            if block.is_fragment:
                assert previous is not None, f"{block.name}: a fragment needs a program before it"
                compile(block.source, block.name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            else:
                try:
                    compile(block.source, block.name, "exec")
                except SyntaxError as exc:
                    pytest.fail(
                        f"{block.name} is not a whole program ({exc.msg}, line {exc.lineno}); "
                        f"complete it or start it with {FRAGMENT_MARK!r}"
                    )
                previous = block


def test_extractor_sees_fences_and_fragments(tmp_path: Path) -> None:
    """The extractor picks ```python blocks only, with line numbers and fragment marks."""
    doc = tmp_path / "doc.md"
    doc.write_text(
        "# t\n\n```python\nprint(1)\n```\n\n```bash\necho no\n```\n\n"
        f"```python\n{FRAGMENT_MARK}\nawait x()\n```\n",
        encoding="utf-8",
    )
    blocks = python_blocks(doc)
    assert [(b.line, b.is_fragment) for b in blocks] == [(4, False), (12, True)]
    assert blocks[0].source == "print(1)\n"


@pytest.fixture
async def kis_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a reader who pasted `kis-async sim`'s export lines."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIS_")}
    env["KIS_TOKEN_CACHE_DIR"] = str(tmp_path / "tokens")
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@pytest.fixture
def servers_env(request: pytest.FixtureRequest, block: Block) -> dict[str, str]:
    """``REDIS_URL`` and ``DATABASE_URL`` of throwaway servers, for the programs that use
    them (the "Many workers, one account" section): real servers, started once a session."""
    if "REDIS_URL" not in block.source and "DATABASE_URL" not in block.source:
        return {}
    redis = request.getfixturevalue("redis_server")
    database = request.getfixturevalue("postgres_dsn")
    return {"REDIS_URL": redis.url, "DATABASE_URL": database}


@pytest.mark.parametrize("block", PROGRAMS, ids=[b.name for b in PROGRAMS])
async def test_program_runs_against_the_simulator(
    block: Block, kis_env: dict[str, str], servers_env: dict[str, str], tmp_path: Path
) -> None:
    """The program exits 0 within its time bound, without a traceback."""
    script = tmp_path / "program.py"
    script.write_text(block.source, encoding="utf-8")
    async with KISSimulator(seed=2026, mode=Mode.PAPER).serve(port=0) as sim:
        env = kis_env | servers_env | dict(line.split("=", 1) for line in sim.env_lines())
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), PROGRAM_TIMEOUT)
        except TimeoutError:
            proc.kill()
            out, err = await proc.communicate()
            pytest.fail(
                f"{block.name} did not finish in {PROGRAM_TIMEOUT:.0f} s\n"
                f"{out.decode()}\n{err.decode()}"
            )
    output = out.decode() + err.decode()
    assert proc.returncode == 0, f"{block.name} failed:\n{output}"
    assert "Traceback" not in output
