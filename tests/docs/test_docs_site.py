"""The docs site's sources hang together: every page in the nav exists, every page exists in
the nav, and every README section a guide embeds is marked in the README."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
_INCLUDE = re.compile(r'^--8<-- "([^":]+)(?::([\w-]+))?"$', re.MULTILINE)


def nav_pages() -> list[str]:
    """Pages named in mkdocs.yml's nav (``Title: path.md`` entries)."""
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = text[text.index("\nnav:") :]
    return re.findall(r":\s+(\S+\.md)\s*$", nav, re.MULTILINE)


def test_nav_and_pages_match() -> None:
    """No page is missing from the nav or from docs/."""
    pages = nav_pages()
    on_disk = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(pages) == on_disk
    assert len(pages) == len(set(pages))


def test_embedded_sections_are_marked_in_their_files() -> None:
    """Each `--8<-- "FILE:section"` has start and end markers, in order, in FILE."""
    includes = [
        (page, match.group(1), match.group(2))
        for page in DOCS.rglob("*.md")
        for match in _INCLUDE.finditer(page.read_text(encoding="utf-8"))
    ]
    assert {"README.md", "CHANGELOG.md"} <= {target for _, target, _ in includes}
    for page, target, section in includes:
        text = (ROOT / target).read_text(encoding="utf-8")
        if section is None:
            continue
        start = text.find(f"<!-- --8<-- [start:{section}] -->")
        end = text.find(f"<!-- --8<-- [end:{section}] -->")
        assert 0 <= start < end, f"{page.name}: {target} has no section {section!r}"
        body = text[start:end]
        assert "## " not in body.replace("### ", ""), f"{section!r} runs into the next section"
