"""docs/api.md is what tools/gen_api_reference.py makes of the code today,
and every public name has a docstring for it to show."""

from __future__ import annotations

import importlib
import importlib.util
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_api_reference", ROOT / "tools" / "gen_api_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generator = load_generator()


def test_the_committed_reference_is_up_to_date() -> None:
    committed = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert committed == generator.render(), "docs/api.md is out of date: run python tools/gen_api_reference.py"


def test_every_public_name_and_member_has_a_docstring() -> None:
    assert generator.undocumented() == []


@pytest.mark.parametrize("module_name", generator.MODULES)
def test_every_public_name_has_a_section(module_name: str) -> None:
    page = generator.render()
    module = importlib.import_module(module_name)
    missing = [name for name in module.__all__ if f"\n### {module_name}.{name}\n" not in page]
    assert missing == []


def test_rst_markup_becomes_markdown() -> None:
    doc = textwrap.dedent(
        """\
        Uses :class:`~netkit.errors.InvalidURI`, :meth:`feed` and ``code``.

        Client to server::

            {"type": "join"}

        Args:
            role: who we are,
                on two lines.
            a, b: both.
        """
    )
    assert generator.markdown(doc) == textwrap.dedent(
        """\
        Uses `InvalidURI`, `feed` and `code`.

        Client to server:

        ```
        {"type": "join"}
        ```

        Arguments:

        - `role`: who we are, on two lines.
        - `a`, `b`: both."""
    )


def test_signatures_show_annotations_as_written_and_stable_defaults() -> None:
    # Postponed annotations (this module's, like netkit's) are kept as the text written.
    def sample(a: int, /, b: str = "x", *args: bytes, c: object = object(), **kw: float) -> bool:
        raise NotImplementedError

    assert generator.signature_of(sample) == "(a: int, /, b: str = 'x', *args: bytes, c: object = ..., **kw: float) -> bool"
