"""stdin's lines for the command-line clients, read off the loop and bounded.

``netkit ws``, ``netkit send`` and ``netkit chat-client`` send what is typed
or piped in while they print what arrives.  Reading stdin blocks, so it
happens on a thread; what it reads is bytes, so no input can make that
thread fail (decoding is the caller's business, with the caller's policy
for bytes that are not text).
"""

from __future__ import annotations

import os
import sys
import threading

from .errors import LimitOverrunError
from .loop import EventLoop
from .sync import Queue

__all__ = ["StdinLines", "STDIN_MAX_LINE"]

# stdin is read in chunks of this size, and at most this many chunks ahead of
# the network (1 MiB): a large file piped in is not read into memory at once.
STDIN_CHUNK_SIZE = 64 * 1024
STDIN_CHUNKS_AHEAD = 16
# The longest line (one message or frame) read from stdin: without a bound,
# input with no newline would be buffered whole.
STDIN_MAX_LINE = 1024 * 1024


class StdinLines:
    """stdin's lines (bytes), read on a daemon thread and handed to the loop.

    Reading a terminal or a pipe blocks, so it cannot happen on the loop.  An
    executor thread will not do either: one stuck in a read is waited for
    when the loop shuts down, so the command would hang after its connection
    is gone until the user pressed Enter.  Nobody waits for a daemon thread.
    It reads the file descriptor with ``os.read`` rather than through
    ``sys.stdin``: a daemon thread blocked inside ``sys.stdin.buffer`` holds
    its lock, and the interpreter aborts when it cannot take that lock to
    close stdin on exit.  Nor does it decode: a ``sys.stdin`` that meets
    bytes its encoding cannot read raises in the thread, and the program,
    still waiting for the next line, would hang.
    """

    def __init__(self, loop: EventLoop, max_line: int = STDIN_MAX_LINE) -> None:
        self._loop = loop
        self._max_line = max_line
        self._chunks: Queue[bytes] = Queue()  # b"" marks the end of input
        self._room = threading.Semaphore(STDIN_CHUNKS_AHEAD)
        self._buffer = bytearray()
        self._ended = False
        try:
            fd = sys.stdin.fileno()
        except (AttributeError, ValueError, OSError):  # no stdin at all (started with fd 0 closed)
            self._ended = True
            return
        threading.Thread(target=self._read, args=(fd,), name="netkit-stdin", daemon=True).start()

    def _read(self, fd: int) -> None:
        try:
            while True:
                self._room.acquire()
                try:
                    chunk = os.read(fd, STDIN_CHUNK_SIZE)
                except OSError:
                    chunk = b""  # stdin went away (a hung-up terminal): as good as its end
                self._loop.call_soon_threadsafe(self._chunks.put_nowait, chunk)
                if not chunk:
                    return
        except RuntimeError:
            pass  # the loop is closed: the command is over

    async def readline(self) -> bytes | None:
        """The next line, with its line ending; ``None`` at the end of input.

        Raises :class:`~netkit.errors.LimitOverrunError` for a line longer
        than ``max_line`` bytes (its ending not counted).
        """
        while True:
            newline = self._buffer.find(b"\n")
            # The line's length without its ending (\n, or \r\n): what is sent.
            if newline >= 0:
                length = newline - 1 if newline and self._buffer[newline - 1] == 0x0D else newline
            else:
                length = len(self._buffer) - (1 if self._buffer.endswith(b"\r") else 0)
            if length > self._max_line:
                raise LimitOverrunError(f"a line on stdin is longer than {self._max_line} bytes", length)
            if newline >= 0:
                line = bytes(self._buffer[: newline + 1])
                del self._buffer[: newline + 1]
                return line
            if self._ended:
                line, self._buffer = bytes(self._buffer), bytearray()
                return line or None  # a last line without a newline still counts
            chunk = await self._chunks.get()
            self._room.release()
            if chunk:
                self._buffer += chunk
            else:
                self._ended = True
