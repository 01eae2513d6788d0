"""The framing examples, run as a user would run them."""

from __future__ import annotations

import pathlib
import subprocess
import sys

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def test_sticky_packets_example_shows_the_problem_and_the_fix():
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "sticky_packets.py")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # Three sends, one recv, glued together.
    assert "one recv() on the other: b'helloworld!'" in out
    # One large send, many recvs (at most 64 KiB each, so at least 16).
    pieces = int(out.split("arrives in ")[1].split(" recv()")[0])
    assert pieces >= 16
    # Through the framer: exactly the four messages.
    assert "4 frames out: b'hello' b'world' b'!' <1,048,576 bytes>" in out
    assert "exactly as sent" in out
