"""Every Python snippet in docs/framing.md runs and its assertions hold."""

from __future__ import annotations

import pathlib
import re

import pytest

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "framing.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_the_page_has_snippets():
    assert len(SNIPPETS) >= 4


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_snippet_runs(index):
    code = compile(SNIPPETS[index], f"{DOC.name} snippet {index + 1}", "exec")
    exec(code, {"__name__": f"framing_doc_snippet_{index + 1}"})
