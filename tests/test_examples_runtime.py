"""The event-loop and coroutine examples, run as a user runs them:
``python examples/FOLDER/X.py`` from the repository root, as a subprocess.

The examples mostly sleep, so they all start at once (one fixture) and each
test checks one example's output.  Only orderings the loop guarantees (timer
deadlines, FIFO queues) are checked, never how long anything took.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
from typing import Iterator

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = [
    "03-event-loop/loop_demo.py",
    "03-event-loop/timers_and_callbacks.py",
    "03-event-loop/concurrent_coroutines.py",
    "01-concurrency/cpu_offload.py",
    "07-embedding/loop_thread_app.py",
]
TIME_PREFIX = re.compile(r"^\[\d+\.\d\ds\] ")


class Finished:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        # The lines without the "[0.12s] " timestamps some examples print.
        self.lines = [TIME_PREFIX.sub("", line) for line in stdout.splitlines()]

    def index(self, text: str) -> int:
        """Position of the first line containing ``text``."""
        for position, line in enumerate(self.lines):
            if text in line:
                return position
        raise AssertionError(f"{text!r} not in the output:\n{self.stdout}")


@pytest.fixture(scope="module")
def outputs() -> Iterator[dict[str, Finished]]:
    running = {
        name: subprocess.Popen(
            [sys.executable, f"examples/{name}"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in EXAMPLES
    }
    finished = {}
    try:
        for name, process in running.items():
            stdout, stderr = process.communicate(timeout=60)
            finished[name] = Finished(process.returncode, stdout, stderr)
    finally:
        for process in running.values():
            if process.poll() is None:
                process.kill()
                process.communicate()
    yield finished


def ran_cleanly(result: Finished) -> None:
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # no warnings, no logged errors


def test_loop_demo(outputs):
    result = outputs["03-event-loop/loop_demo.py"]
    ran_cleanly(result)
    assert result.index("call_soon: the first callback runs") < result.index("call_soon: the second one runs")
    assert result.index("task A: 3") < result.index("task A: 2") < result.index("task A: 1")
    assert "add_reader: the socket became readable, it holds b'ping'" in result.lines
    assert "call_later(0.5): a timer fired" in result.lines
    assert "call_soon_threadsafe: a message from thread 'helper'" in result.lines
    assert "never prints" not in result.stdout
    assert "gather: both tasks are done, results in order: ['task A done', 'task B done']" in result.lines
    squares = sum(i * i for i in range(200_000))
    assert f"run_in_executor: blocking work ran on a pool thread, result {squares}" in result.lines
    assert result.lines[-1].startswith("loop closed")


def test_timers_and_callbacks(outputs):
    result = outputs["03-event-loop/timers_and_callbacks.py"]
    ran_cleanly(result)
    assert result.lines == [
        "1. call_soon runs callbacks in the order they were scheduled:",
        "   callback 1",
        "   callback 2",
        "   callback 3",
        "2. timers run in deadline order: timer A (0.10 s)",
        "   timer B1 (0.20 s, scheduled first)",
        "   timer B2 (0.20 s, the same deadline, scheduled second)",
        "   timer C (0.30 s)",
        "3. the timer due at 0.15 s was cancelled (cancelled() is True), so it never fired",
        "4. a callback raises; the handler gets the error and the loop goes on:",
        "   exception handler: exception in callback main.<locals>.broken: ValueError('a bug in a callback')",
        "   the next timer still runs",
        "5. a repeating timer, every 0.1 s:",
        "   heartbeat (2 to go)",
        "   heartbeat (1 to go)",
        "   heartbeat (0 to go)",
        "6. stop(): run_forever() returns after this iteration",
        "done",
    ]


def test_concurrent_coroutines(outputs):
    result = outputs["03-event-loop/concurrent_coroutines.py"]
    ran_cleanly(result)
    sequential = result.lines[result.index("1. one after the other") : result.index("2. all at once")]
    concurrent = result.lines[result.index("2. all at once") : result.index("3. wait_for")]
    finished = [line.split()[1] for line in sequential if "finished" in line]
    assert finished == ["large.iso", "small.txt", "medium.bin"]  # in the order started
    finished = [line.split()[1] for line in concurrent if "finished" in line]
    assert finished == ["small.txt", "medium.bin", "large.iso"]  # shortest wait first
    assert "results in the order asked for: ['large.iso', 'small.txt', 'medium.bin']" in concurrent[-1]
    assert any("wait_for cancelled it and raised TimeoutError" in line for line in result.lines)
    assert "    mirror-1 was cancelled because a sibling failed" in result.lines
    assert "    mirror-2 was cancelled because a sibling failed" in result.lines
    assert "    the group raised ExceptionGroup with: ConnectionError('mirror-3: connection reset')" in result.lines
    jobs = sorted(line.split(" did ")[1] for line in result.lines if " did job" in line)
    assert jobs == ["job 1", "job 2", "job 3", "job 4"]


def test_cpu_offload(outputs):
    result = outputs["01-concurrency/cpu_offload.py"]
    ran_cleanly(result)
    # The same job, three ways, the same answer (how long each took is the machine's business).
    for way in ("1. on the loop", "2. on a thread pool", "3. on a process pool"):
        line = result.lines[result.index(way)]
        assert ": 17984 primes in " in line and "the loop's worst stall" in line
    plain = result.lines[result.index("a plain callback runs on")]
    assert "'MainThread'" not in plain
    assert "   done right: the done callback runs on 'MainThread' with 168 primes" in result.lines
    assert any("an error in the worker arrives as an exception: TypeError" in line for line in result.lines)
    assert result.lines[-1] == "the loop ran on thread 'MainThread' throughout"


def test_loop_thread_app(outputs):
    result = outputs["07-embedding/loop_thread_app.py"]
    ran_cleanly(result)
    assert "   auth OK after 0.1 s (checked on thread 'netkit-loop')" in result.lines
    completed = result.lines[result.index("2. submit all") + 1 : result.index("3. a timeout")]
    assert sorted(line.split()[0] for line in completed) == ["auth", "billing", "search"]
    assert all("checked on thread 'netkit-loop'" in line for line in completed)
    assert "   archive: no answer within 0.2 s; the task is still running on the loop" in result.lines
    assert "   cancelled: True" in result.lines
    audit = [line for line in result.lines if "[audit]" in line]
    assert audit == [
        "   [audit] user alice logged in",
        "   [audit] report exported",
        "   [audit] user alice logged out",
    ]
    assert result.lines[-1] == "   loop closed: True"


# ------------------------------------------------ the docs' snippets are examples too

DOCS = [ROOT / "docs" / "event-loop.md", ROOT / "docs" / "coroutines.md"]
SNIPPETS = [
    pytest.param(code, id=f"{doc.name}-{number}")
    for doc in DOCS
    for number, code in enumerate(re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), flags=re.DOTALL), 1)
]


def test_the_pages_have_snippets():
    assert len(SNIPPETS) >= 15


@pytest.mark.parametrize("code", SNIPPETS)
def test_doc_snippet_runs(code):
    exec(compile(code, "<doc snippet>", "exec"), {"__name__": "doc_snippet"})
