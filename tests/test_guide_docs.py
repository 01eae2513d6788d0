"""Every ```python snippet in the guide pages runs and its assertions hold.

```py blocks are excerpts (they need a display, a web framework or the rest
of an example) and are not run here; the examples they come from are.
"""

from __future__ import annotations

import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
PAGES = ["concurrency.md", "blocking.md", "embedding.md", "chat.md"]
SNIPPETS = [
    (page, number, code)
    for page in PAGES
    for number, code in enumerate(re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(encoding="utf-8"), flags=re.DOTALL), 1)
]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_has_runnable_code(page: str) -> None:
    assert any(name == page for name, _, _ in SNIPPETS)


@pytest.mark.parametrize(("page", "number", "code"), SNIPPETS, ids=[f"{page}-{number}" for page, number, _ in SNIPPETS])
def test_snippet_runs(page: str, number: int, code: str) -> None:
    exec(compile(code, f"{page} snippet {number}", "exec"), {"__name__": f"guide_snippet_{number}"})
