"""The guide's examples on blocking I/O and embedding, run as a reader runs them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# A bound for a hung example, far above what any of them needs.
PROCESS_TIMEOUT = 60


def run_example(name: str, *args: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout.splitlines()


def test_blocking_vs_nonblocking_handles_messages_in_arrival_order_only_with_select() -> None:
    lines = run_example("02-blocking/blocking_vs_nonblocking.py", "--delay", "0.05")
    assert "  handled in the order A, B, C: B and C waited for A" in lines
    assert any("BlockingIOError" in line for line in lines)
    assert "  handled in the order B, C, A: each as soon as it arrived" in lines


def test_embed_run_once_serves_the_network_between_frames() -> None:
    lines = run_example("07-embedding/run_once.py", "--questions", "4", "--pause", "0.1")
    heard = [re.fullmatch(r"  spectator heard: score (\d+) at frame (\d+)", line) for line in lines]
    answers = [(int(m.group(1)), int(m.group(2))) for m in heard if m]
    assert len(answers) == 4
    # The server reads the game's state directly: the score is always 10 per frame so far.
    assert all(score == 10 * frame for score, frame in answers)
    assert [frame for _, frame in answers] == sorted(frame for _, frame in answers)
    assert lines[-1] == "the spectator got 4 answers"


def test_embed_loop_thread_from_synchronous_code() -> None:
    lines = run_example("07-embedding/loop_thread.py")
    assert "run(): HELLO" in lines
    assert "submit(): ['ONE', 'TWO', 'THREE'] (3 done)" in lines
    assert "call_soon(): on netkit-loop" in lines
    assert lines[-1] == "loop thread stopped; back to plain synchronous code"


def test_embed_run_once_counts_in_the_singular_too() -> None:
    lines = run_example("07-embedding/run_once.py", "--questions", "1", "--pause", "0.05")
    assert lines[-1] == "the spectator got 1 answer"


def test_embed_run_once_score_server_is_bounded() -> None:
    """The example's server holds at most one short line, answers every
    question of a read, and stops reading while its answers are not read."""
    folder = str(EXAMPLES / "07-embedding")
    sys.path.insert(0, folder)
    try:
        from run_once import MAX_LINE, Game, ScoreServer
    finally:
        sys.path.remove(folder)
    from netkit.testing import RecordingTransport

    transport = RecordingTransport(ScoreServer(Game()))
    transport.feed(b"score?\n" * 1000 + b"sco")
    assert transport.written.count(b"score 0 at frame 0\n") == 1000
    transport.feed(b"re?\n")
    assert transport.written.count(b"\n") == 1001
    transport.set_write_buffer_size(1 << 20)  # the spectator stopped reading
    assert not transport.is_reading()
    transport.set_write_buffer_size(0)
    assert transport.is_reading()
    transport.feed(b"x" * (MAX_LINE + 1))  # no newline in sight
    assert transport.closed
