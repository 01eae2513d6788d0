"""A terminal client for netkit's chat server, over the framed TCP door.

    python examples/chat_client.py --nick ann
    printf 'hello\\n/who\\n' | python examples/chat_client.py --nick bob

Each line you type is sent as ``{"type": "say", "text": LINE}`` in one
length-prefixed frame (4-byte big-endian length, then UTF-8 JSON); the server
reads ``/who``, ``/join ROOM`` and ``/help`` in it as commands.  ``/quit`` or
end of input (Ctrl-D) says goodbye: the client shuts down its sending side,
prints what the server still had to say, and exits when the server closes.

Reading the keyboard blocks, so a helper thread does it and hands each line
to the loop with ``call_soon_threadsafe``: the loop itself never waits on
anything but sockets.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from typing import Any

from _common import netkit
from netkit import framing
from netkit.chat import protocol

# The largest frame accepted from the server: a welcome replays up to 50
# messages of at most ~8 KiB of JSON each (~410 KB), so 1 MiB leaves room.
MAX_FRAME_SIZE = 1024 * 1024

# Lines read ahead of the loop: a few screenfuls of pasted text.
LINES_AHEAD = 64

# Control characters (but newline) shown escaped: a message must not be able
# to move the cursor, clear the screen or retitle the terminal.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters escaped and continuation lines indented."""
    safe = _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", str(text))
    return safe.replace("\n", "\n    ")


def format_message(message: dict[str, Any]) -> str | None:
    """One server message as a line of text (``None`` for those not shown)."""
    kind = message["type"]
    if kind == "message":
        clock = time.strftime("%H:%M:%S", time.localtime(message["ts"]))
        return f"[{clock}] <{printable(message['nick'])}> {printable(message['text'])}"
    if kind == "welcome":
        members = ", ".join(printable(nick) for nick in message["members"])
        return f"* you are {printable(message['nick'])} in #{printable(message['room'])}; here: {members}"
    if kind == "joined":
        return f"* {printable(message['nick'])} joined #{printable(message['room'])}"
    if kind == "left":
        reason = "" if message.get("reason") == "quit" else f" ({printable(message.get('reason', ''))})"
        return f"* {printable(message['nick'])} left #{printable(message['room'])}{reason}"
    if kind == "who":
        return f"* in #{printable(message['room'])}: {', '.join(printable(n) for n in message['members'])}"
    if kind == "info":
        return f"* {printable(message['text'])}"
    if kind == "error":
        return f"! {printable(message['message'])} ({printable(message['code'])})"
    return None  # ping/pong, and types newer than this client


class StdinLines:
    """Lines of stdin, read on a daemon thread and handed to the loop.

    The thread waits when ``LINES_AHEAD`` lines are queued and not yet taken,
    so piping a huge file in cannot fill memory.
    """

    def __init__(self, loop: netkit.EventLoop) -> None:
        self._loop = loop
        self._queue: netkit.Queue[str | None] = netkit.Queue()
        self._room = threading.Semaphore(LINES_AHEAD)
        threading.Thread(target=self._read, name="stdin", daemon=True).start()

    def _read(self) -> None:
        for line in sys.stdin:
            self._room.acquire()
            self._loop.call_soon_threadsafe(self._queue.put_nowait, line.rstrip("\r\n"))
        self._loop.call_soon_threadsafe(self._queue.put_nowait, None)

    async def get(self) -> str | None:
        """The next line, without its line ending; ``None`` at end of input."""
        line = await self._queue.get()
        self._room.release()
        return line


class ChatConnection:
    """One framed connection: JSON objects in, JSON objects out."""

    def __init__(self, reader: netkit.StreamReader, writer: netkit.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.framer = framing.LengthPrefixFramer("!I", max_frame_size=MAX_FRAME_SIZE)

    def send(self, message: dict[str, Any]) -> None:
        framing.write_frame(self.writer, self.framer, json.dumps(message).encode("utf-8"))

    async def receive(self) -> dict[str, Any] | None:
        """The next server message, ``None`` once the server has closed."""
        while True:
            frame = await framing.read_frame(self.reader, self.framer)
            if frame is None:
                return None
            try:
                return protocol.decode_server_message(frame)
            except ValueError:
                print("! the server sent something that is not a chat message; ignored", flush=True)


async def send_lines(connection: ChatConnection, lines: StdinLines) -> None:
    """Send each typed line; on ``/quit`` or end of input, half-close and stop."""
    while True:
        line = await lines.get()
        if line is None or line.strip() == "/quit":
            break
        if line.strip():
            connection.send({"type": "say", "text": line})
            await connection.writer.drain()
    # Done talking, still listening: the server answers what it got, then closes.
    if connection.writer.can_write_eof():
        connection.writer.write_eof()


async def main(host: str, port: int, nick: str, room: str) -> int:
    try:
        reader, writer = await netkit.open_connection(host, port)
    except OSError as exc:
        print(f"cannot connect to {host}:{port}: {exc}", file=sys.stderr)
        return 1
    connection = ChatConnection(reader, writer)
    connection.send({"type": "join", "nick": nick, "room": room})
    sender: netkit.Task[None] | None = None
    status = 0
    try:
        while (message := await connection.receive()) is not None:
            kind = message["type"]
            if kind == "ping":
                connection.send({"type": "pong"})
                continue
            line = format_message(message)
            if line is not None:
                print(line, flush=True)
            if kind == "welcome":
                for old in message["history"]:
                    print(format_message(old), flush=True)
                if sender is None:
                    lines = StdinLines(netkit.get_running_loop())
                    sender = netkit.create_task(send_lines(connection, lines))
            elif kind == "error" and sender is None:
                status = 1  # the join was refused: nothing more to do
                break
    except (ConnectionError, netkit.ProtocolError, netkit.IncompleteReadError) as exc:
        print(f"* connection lost: {exc}", flush=True)
        status = 1
    finally:
        if sender is not None:
            sender.cancel()
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
    print("* disconnected", flush=True)
    return status


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766, help="the chat server's framed TCP port (default 8766)")
    parser.add_argument("--nick", help="your nickname (asked for when stdin is a terminal)")
    parser.add_argument("--room", default=protocol.DEFAULT_ROOM, help="room to join (default lobby)")
    args = parser.parse_args()
    nick = args.nick
    if nick is None:
        if not sys.stdin.isatty():
            parser.error("--nick is required when stdin is not a terminal")
        nick = input("nickname: ").strip()
    sys.exit(netkit.run(main(args.host, args.port, nick, args.room)))
