"""The README's promises: its quick start is CI's command, its examples run,
and it links every page of the guide."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SNIPPETS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
TEST_COMMAND = "python -m pip install -e '.[test]' && python -m pytest -q"

# A snippet that has not finished after this long hangs.
SNIPPET_TIMEOUT = 30


def test_quick_start_is_two_commands_and_ci_runs_the_same_test_command() -> None:
    quick_start = README.split("## Quick start", 1)[1]
    block = re.search(r"```\n(.*?)```", quick_start, flags=re.DOTALL)
    assert block is not None
    assert block.group(1).splitlines() == ["python examples/chat_server.py", TEST_COMMAND]
    ci_commands = [line for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines() if line.startswith("python ")]
    assert ci_commands == [TEST_COMMAND]


def test_there_is_an_example_of_each_api() -> None:
    uses = {
        "callback API": "(netkit.Protocol)",
        "streams": "netkit.start_server(",
        "framing": "LengthPrefixFramer(",
        "WebSocket async API": "async for message in ws",
        "WebSocket callback API": "(websocket.WebSocketHandler)",
        "LoopThread": "netkit.LoopThread()",
    }
    missing = [api for api, marker in uses.items() if not any(marker in code for code in SNIPPETS)]
    assert missing == []
    assert all(len(code.splitlines()) <= 25 for code in SNIPPETS)  # short enough to read at a glance


@pytest.mark.parametrize("code", SNIPPETS, ids=[f"snippet-{number}" for number in range(1, len(SNIPPETS) + 1)])
def test_snippet_runs_cleanly(code: str) -> None:
    # -X dev shows the warnings a user would otherwise not see, unclosed sockets among them.
    result = subprocess.run(
        [sys.executable, "-X", "dev", "-c", code],
        capture_output=True,
        text=True,
        timeout=SNIPPET_TIMEOUT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))},
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_every_guide_page_is_linked() -> None:
    linked = set(re.findall(r"\]\(docs/([\w.-]+\.md)\)", README))
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    pages_in_index = set(re.findall(r"\]\(([\w.-]+\.md)\)", index))
    on_disk = {path.name for path in (ROOT / "docs").glob("*.md")}
    assert "index.md" in linked
    assert sorted((pages_in_index | on_disk) - linked) == []
