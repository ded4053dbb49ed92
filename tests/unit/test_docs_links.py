"""Every relative link in README.md and docs/*.md resolves: the file exists, and so does its #anchor.

The README is a front door to docs/; a page that moves or a heading that is renamed must not leave
a newcomer on a dead link. Anchors follow GitHub's rule for heading ids (lower case, punctuation
dropped, spaces to hyphens, ``-1``, ``-2`` for repeats). Links inside code are not links.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import REPO

LINK = re.compile(r"(?<!\!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
IMAGE = re.compile(r"!\[[^\]]*\]\(\s*([^)\s]+)\s*\)")
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def pages(root: Path = REPO) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def prose(text: str) -> str:
    """The text outside fenced code blocks and inline code spans, where links are links."""
    kept, fence = [], ""
    for line in text.splitlines():
        marker = re.match(r"^\s*(```+|~~~+)", line)
        if marker and (not fence or marker.group(1).startswith(fence)):
            fence = "" if fence else marker.group(1)[:3]
            kept.append("")
            continue
        kept.append("" if fence else re.sub(r"(`+)(?:(?!\1).)+\1", "", line))
    return "\n".join(kept)


def slug(heading: str) -> str:
    """GitHub's id for a heading: links keep their text, markup and punctuation go, spaces become ``-``."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading id of a page, repeats numbered as GitHub numbers them."""
    seen: dict[str, int] = {}
    out = set()
    for line in prose_headings(text):
        base = slug(line)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def prose_headings(text: str) -> list[str]:
    """ATX headings outside code fences (inline code kept: ``# `x` y`` has the id ``x-y``)."""
    out, fence = [], False
    for line in text.splitlines():
        if re.match(r"^\s*(```|~~~)", line):
            fence = not fence
        elif not fence and (m := re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)):
            out.append(m.group(1))
    return out


def broken_links(page: Path, root: Path = REPO) -> list[str]:
    """``page:line: target (why)`` for each relative link of ``page`` that does not resolve."""
    out = []
    for number, line in enumerate(prose(page.read_text()).splitlines(), 1):
        for target in [*LINK.findall(line), *IMAGE.findall(line)]:
            if SCHEME.match(target):
                continue  # http(s), mailto: not this test's business
            path_part, _, anchor = target.partition("#")
            dest = (page.parent / path_part).resolve() if path_part else page
            where = f"{page.relative_to(root)}:{number}: {target}"
            if not dest.exists():
                out.append(f"{where} (no such file)")
            elif root.resolve() not in (dest, *dest.parents):
                out.append(f"{where} (outside the repository)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text()):
                out.append(f"{where} (no heading with id {anchor!r} in {dest.name})")
    return out


def test_readme_and_docs_are_walked() -> None:
    assert len(pages()) >= 8  # README and the docs it sends readers to


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_the_readme_links_every_page_of_docs() -> None:
    readme = (REPO / "README.md").read_text()
    missing = [p.name for p in sorted((REPO / "docs").glob("*.md")) if f"docs/{p.name}" not in readme]
    assert missing == [], f"README.md does not send readers to {missing}"


@pytest.mark.parametrize(
    ("heading", "want"),
    [
        ("Changing the model", "changing-the-model"),
        ("Change feed: `<topic>.indexed`", "change-feed-topicindexed"),
        ("How far one machine goes: `lookalike bench --scale N`", "how-far-one-machine-goes-lookalike-bench---scale-n"),
        ("Security: what is reachable, and with what", "security-what-is-reachable-and-with-what"),
        ("Runs on the 2-core machine, thumbnails and photos", "runs-on-the-2-core-machine-thumbnails-and-photos"),
        ("See [the API](api.md) now", "see-the-api-now"),
    ],
)
def test_slugs_are_githubs(heading: str, want: str) -> None:
    assert slug(heading) == want


def test_the_checker_finds_a_dead_file_a_dead_anchor_and_ignores_code(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Same\n\n## Same\n")
    page = tmp_path / "README.md"
    page.write_text(
        "See [a](docs/a.md#a-page), [again](docs/a.md#same-1), [web](https://example.com/x).\n"
        "Broken: [gone](docs/gone.md) and [anchor](docs/a.md#nope) and [here](#nowhere).\n"
        "`[not a link](nowhere.md)`\n```\n[nor this](nowhere.md)\n```\n# Top\n[self](#top)\n"
    )
    found = broken_links(page, tmp_path)
    assert found == [
        "README.md:2: docs/gone.md (no such file)",
        "README.md:2: docs/a.md#nope (no heading with id 'nope' in a.md)",
        "README.md:2: #nowhere (no heading with id 'nowhere' in README.md)",
    ]
