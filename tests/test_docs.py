"""The docs stand on their own: every figure in a generated table comes from a benchmark JSON, every relative
link resolves inside the repository, nothing points outside it (no ../shared, no web addresses other than
loopback nodes), and the Python examples (docs/QUICKSTART.md, the README's) print what they say."""
from __future__ import annotations

import doctest
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import doc_tables  # noqa: E402

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
URL = re.compile(r"\b(?:https?|ftp)://[^\s)`'\"<>]+")
LOOPBACK = re.compile(r"^[a-z]+://(127\\?\.0\\?\.0\\?\.1|localhost|0\.0\.0\.0)\b")
RESERVED = (".invalid", ".test", ".example")  # names that never resolve (test hosts)


def _points_outside(url: str) -> bool:
    """A web address that names a real host (loopback nodes and dotless test hosts such as ``ftp://x`` do not)."""
    host = url.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0]
    return not LOOPBACK.match(url) and "." in host and not host.endswith(RESERVED)
TEXT_SUFFIXES = {".py", ".md", ".vy", ".sh", ".toml", ".txt", ".c", ".js", ".json", ".cfg", ".ini", ""}


def _tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    files = [ROOT / line for line in out.splitlines() if line]
    return [f for f in files if f.is_file() and (f.suffix in TEXT_SUFFIXES or f.name == "Makefile")
            and not f.parts[-2:-1] == ("bench-results",)]


def test_generated_tables_match_the_benchmark_json():
    stale = []
    for path in doc_tables.DOCS:
        _, names = doc_tables.render(path.read_text())
        stale += [f"{path.name}:{n}" for n in names]
    assert not stale, f"regenerate with `python benchmarks/doc_tables.py`: {stale}"


def test_every_generated_region_has_a_renderer():
    regions = [m.group("name") for p in doc_tables.DOCS for m in doc_tables.REGION.finditer(p.read_text())]
    assert regions, "no generated table found in README.md / docs"
    assert set(regions) <= set(doc_tables.RENDERERS)


@pytest.mark.parametrize("doc", [p for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md"),
                                             *ROOT.glob("*/README.md")]], ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(doc):
    broken = []
    for target in LINK.findall(doc.read_text()):
        if URL.match(target) or target.startswith("#") or target.startswith("mailto:"):
            continue
        path = (doc.parent / target.split("#", 1)[0]).resolve()
        if not path.exists() or ROOT not in path.parents and path != ROOT:
            broken.append(target)
    assert not broken, f"{doc.relative_to(ROOT)}: links that do not resolve inside the repository: {broken}"


def test_nothing_points_outside_the_repository():
    offenders = []
    for path in _tracked_files():
        if path == Path(__file__):
            continue
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if "../shared" in line or "shared/" in line and ("MODEL.md" in line or "TOOLING.md" in line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:100]}")
            for url in URL.findall(line):
                if _points_outside(url):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {url}")
            if re.search(r"\b[\w.-]+/[\w.-]+#\d+\b", line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:100]}")
    assert not offenders, "references outside the repository:\n" + "\n".join(offenders)


@pytest.mark.parametrize(("page", "least"), [("docs/QUICKSTART.md", 40), ("README.md", 4)])
def test_the_python_examples_print_what_the_page_shows(page, least):
    """Every ``>>>`` line of the page runs, in order, in one namespace, and prints exactly what follows it."""
    path = ROOT / page
    test = doctest.DocTestParser().get_doctest(path.read_text(), {"__name__": "__main__"}, page, str(path), 0)
    assert len(test.examples) >= least, f"{page}: {len(test.examples)} examples; were its examples removed?"
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    results = runner.run(test, out=report.write)
    assert results.failed == 0, report.getvalue()
