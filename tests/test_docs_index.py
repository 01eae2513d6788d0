"""docs/index.md, the guide's table of contents: every page, in learning order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
INDEX = (DOCS / "index.md").read_text(encoding="utf-8")
LINKED = re.findall(r"\]\(([\w.-]+\.md)\)", INDEX)

# The course: concurrency, blocking, the reactor and coroutines, TCP/UDP,
# framing, WebSockets and the chat, embedding, Redis; then the reference pages.
LEARNING_ORDER = [
    "concurrency.md",
    "blocking.md",
    "event-loop.md",
    "coroutines.md",
    "tcp-udp.md",
    "framing.md",
    "websocket.md",
    "chat.md",
    "embedding.md",
    "redis.md",
    "api.md",
    "performance.md",
    "conformance.md",
]


def test_pages_are_linked_in_learning_order() -> None:
    first_links = list(dict.fromkeys(LINKED))
    assert first_links == LEARNING_ORDER


def test_every_page_in_docs_is_linked() -> None:
    pages = sorted(path.name for path in DOCS.glob("*.md") if path.name != "index.md")
    assert [page for page in pages if page not in LINKED] == []


@pytest.mark.parametrize("page", LEARNING_ORDER)
def test_linked_page_exists(page: str) -> None:
    assert (DOCS / page).exists(), f"docs/index.md links docs/{page}, which does not exist"
    assert (DOCS / page).read_text(encoding="utf-8").startswith("# ")
