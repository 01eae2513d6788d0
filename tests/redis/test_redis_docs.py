"""docs/redis.md: every ```python block runs against a real redis-server and its
assertions hold, so the page cannot drift from the code."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from redis_helpers import RedisServer

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "redis.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.DOTALL)

# A block that has not finished after this long hangs.
BLOCK_TIMEOUT = 60


def test_the_page_has_runnable_blocks_for_each_part() -> None:
    text = "\n".join(BLOCKS)
    for marker in ("RespParser()", "r.execute(", "r.pipeline()", "RedisError", "r.pubsub()", "protocol=3"):
        assert marker in text, marker


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block-{number}" for number in range(1, len(BLOCKS) + 1)])
def test_block_runs_cleanly(code: str, redis_url: str, redis_server: RedisServer) -> None:
    # The page speaks of a server on localhost:6379; the test's listens elsewhere.
    code = code.replace("redis://localhost:6379", f"redis://127.0.0.1:{redis_server.port}")
    # -X dev shows the warnings a user would otherwise not see, unclosed sockets among them.
    result = subprocess.run(
        [sys.executable, "-X", "dev", "-c", code],
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))},
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_the_limits_table_shows_the_defaults() -> None:
    from netkit.redis import Limits

    text = PAGE.read_text(encoding="utf-8")
    limits = Limits()
    shown = {"64 MiB": 64 * 2**20, "128 MiB": 128 * 2**20, "1,048,576": 2**20, "32": 32, "64 KiB": 64 * 2**10}
    for name in ("max_bulk_length", "max_reply_size", "max_aggregate_length", "max_depth", "max_line_length"):
        row = re.search(rf"\| `{name}` \| ([^|]+) \|", text)
        assert row is not None, name
        assert shown[row.group(1).strip()] == getattr(limits, name), name
