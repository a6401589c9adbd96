"""Docstrings and comments state facts rather than point at documents outside the repository.

A pointer such as ``vv.md 4.5``, ``spec 5.1``, ``§3``, ``section 7`` or ``issue 14`` means
nothing to a reader of the package: the scan lists every such line of ``mica/**/*.py`` and
``docs/*.rst``. A ``.md`` name is allowed when a file of that name is in the repository
(``README.md``).
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO_ROOT

#: (what it is, pattern) of a reference to a document or tracker outside the repository
POINTERS = [
    ("a Markdown document", re.compile(r"\b[\w-]+\.md\b")),
    ("a section sign", re.compile("§")),
    ("a spec section", re.compile(r"\bspec\s+\(?\d", re.IGNORECASE)),
    ("the spec", re.compile(r"\b(?:the|per the) spec(?:'s)?\b(?!\s+(?:that|string|of a source))")),
    ("a section number", re.compile(r"\bsections?\s+\d", re.IGNORECASE)),
    ("an issue", re.compile(r"\bissues?\s+#?\d", re.IGNORECASE)),
    ("a design note or brief", re.compile(r"\bthe (?:design|brief)\b", re.IGNORECASE)),
]


def _repo_markdown_names() -> set[str]:
    return {p.name for p in REPO_ROOT.rglob("*.md") if ".git" not in p.parts}


def pointers(text: str, allowed_md: set[str] = frozenset()) -> list[tuple[int, str, str]]:
    """(line number, what, line) of every outside-document pointer in ``text``."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for what, pattern in POINTERS:
            hits = pattern.findall(line)
            if what == "a Markdown document":
                hits = [h for h in hits if h not in allowed_md]
            if hits:
                found.append((number, what, line.strip()))
                break
    return found


@pytest.mark.parametrize(
    "line",
    [
        "positions the aspect solution predicts (spec vv.md 4), combines",
        "#: the 88 columns of acq_stats.md 8.3, in order",
        '"""The statistics of one slot\'s combined residuals (spec 4.8)."""',
        "here the spec's section 7 limits are applied",
        "Spec: ``aca_hdr3.md`` sections 1-4 and 7.",
        "(spec §3)",
        "#: tables derived from them (issue 16).",
        "PIXTLM/BGDTYP: ``4A`` per the spec.",
        "as the design says",
    ],
)
def test_pointer_patterns_catch(line):
    assert pointers(line), line


@pytest.mark.parametrize(
    "line",
    [
        "def resolve_source(spec: str | Source | None) -> Source:",
        "#: the spec that re-creates the source (recorded in an archive's ``archive.json``)",
        "an update with a source spec whose kind contradicts it is refused",
        "see README.md",
        "to_date(441763266.184)",
        "Where this differs from the original mica, see the documentation's migration notes.",
    ],
)
def test_pointer_patterns_spare(line):
    assert not pointers(line, {"README.md"}), line


def test_no_pointers_to_documents_outside_the_repository():
    allowed = _repo_markdown_names()
    files = sorted((REPO_ROOT / "mica").rglob("*.py")) + sorted((REPO_ROOT / "docs").glob("*.rst"))
    assert files
    found = [
        f"{path.relative_to(REPO_ROOT)}:{number}: {what}: {line}"
        for path in files
        for number, what, line in pointers(path.read_text(encoding="utf-8"), allowed)
    ]
    assert not found, "pointers to documents outside the repository:\n" + "\n".join(found)
