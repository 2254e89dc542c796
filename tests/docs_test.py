"""The README and docs/: every relative link reaches a file, and every #anchor a heading of it (GitHub's slugs)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "kubeflow" / "README.md"]


def _slug(heading: str) -> str:
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"(?ms)^```.*?^```", "", path.read_text())
    return {_slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def _links(path: Path) -> list[str]:
    text = re.sub(r"(?ms)^```.*?^```", "", path.read_text())
    return re.findall(r"\]\(([^)\s]+)\)", text)


def test_every_relative_link_and_anchor_resolves():
    broken = []
    for document in DOCUMENTS:
        for link in _links(document):
            if link.startswith(("http://", "https://", "mailto:")):
                continue
            file, _, anchor = link.partition("#")
            target = (document.parent / file).resolve() if file else document
            if not target.exists():
                broken.append(f"{document.relative_to(REPO)}: {link} (no such file)")
            elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
                broken.append(f"{document.relative_to(REPO)}: {link} (no such heading)")
    assert broken == []


def test_the_readme_is_a_front_door():
    """What it is, the two commands, results, where to go next: detail lives in docs/."""
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 270
    headings = [line[3:] for line in readme.splitlines() if line.startswith("## ")]
    assert headings[:2] == ["Two commands", "Data"] and "Results" in headings and "Where to go next" in headings
