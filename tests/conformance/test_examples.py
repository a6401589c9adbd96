"""The worked examples of ``docs/layout.rst``: each file of ``docs/examples`` is shown on the
page and registered by the conformance suite (so the checks of `test_sources` and
`test_products` run it)."""

from __future__ import annotations

from tests.conformance.conftest import EXAMPLES, EXAMPLES_DIR
from tests.conftest import REPO_ROOT


def test_every_example_is_shown_and_run():
    files = sorted(path.name for path in EXAMPLES_DIR.glob("*.py"))
    assert files == sorted(f"{module.__name__}.py" for module in EXAMPLES)
    page = (REPO_ROOT / "docs" / "layout.rst").read_text()
    for name in files:
        assert f".. literalinclude:: examples/{name}" in page, name
