"""Every document the code cites is in the repository: ``docs/<file>.md`` paths exist, no comment points outside the
repo (the research notes it was built from), and the sections and tests cited by number exist in
``docs/protocol.md`` (§n) and ``docs/reliability.md`` (§n, Tnn)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUFFIXES = {".py", ".html", ".js", ".md", ".toml", ".txt", ".yml", ".yaml", ".cfg"}
DOC_PATH = re.compile(r"docs/[\w./-]+?\.md")
OUTSIDE = re.compile(r"shared/docs|(?<![\w/.-])(?:lnmarkets-v3|reliability|product|style-guide)\.md")
PROTOCOL_CITE = re.compile(r"docs/protocol\.md((?:[ ,;]*(?:and )?§\s?\d+(?:\.\d+)*(?:[–-]§?\d+)?)+)")
RELIABILITY_CITE = re.compile(r"docs/reliability\.md((?:[ ,;]*(?:§\s?\d+(?:\.\d+)?|T\d\d[a-c]?|\"[^\"]+\"))+)")


def _files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    paths = [ROOT / name for name in listed if not name.startswith(("static/vendor/", "locale/"))]
    return [p for p in paths if (p.suffix in SUFFIXES or p.name == "Makefile") and p.is_file()]


def _sources() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text(errors="replace") for p in _files()}


def _headings(doc: str) -> set[str]:
    text = (ROOT / "docs" / doc).read_text()
    return set(re.findall(r"^#+ (\d+(?:\.\d+)*)\.? ", text, flags=re.MULTILINE))


def test_every_cited_docs_path_exists():
    cited = {(name, path) for name, text in _sources().items() for path in DOC_PATH.findall(text) if "<" not in path}
    assert sorted((name, path) for name, path in cited if not (ROOT / path).exists()) == []


def test_nothing_cites_the_notes_outside_the_repository():
    hits = [
        (name, line.strip()[:100])
        for name, text in _sources().items()
        if name != "tests/docs/test_references.py"
        for line in text.splitlines()
        if OUTSIDE.search(line)
    ]
    assert hits == []


@pytest.mark.parametrize(("doc", "pattern"), [("protocol.md", PROTOCOL_CITE), ("reliability.md", RELIABILITY_CITE)])
def test_cited_sections_exist(doc, pattern):
    headings = _headings(doc)
    text = (ROOT / "docs" / doc).read_text()
    missing = set()
    for name, source in _sources().items():
        for match in pattern.finditer(source.replace("\n", " ")):
            for number in re.findall(r"§\s?(\d+(?:\.\d+)*)", match.group(1)):
                if number not in headings:
                    missing.add((name, f"§{number}"))
            for test in re.findall(r"\b(T\d\d)[a-c]?\b", match.group(1)):
                if f"| {test} |" not in text:
                    missing.add((name, test))
            for title in re.findall(r"\"([^\"]+)\"", match.group(1)):
                if title not in text:
                    missing.add((name, title))
    assert sorted(missing) == []


def test_the_section_numbers_used_bare_in_lnmarkets_exist_in_the_protocol_notes():
    headings = _headings("protocol.md")
    cited = {
        (name, number)
        for name, text in _sources().items()
        if name.startswith("lnmarkets/")
        for number in re.findall(r"§(\d+(?:\.\d+)*)", text)
    }
    assert sorted((name, n) for name, n in cited if n not in headings) == []
