"""TCP has no message boundaries: see it happen, then see framing fix it.

    python examples/05-framing/sticky_packets.py

Plain blocking sockets over loopback, no event loop:

1. A sender makes three send() calls; the receiver gets all three messages
   from one recv(), glued together (the "sticky packet" problem, 黏包).
2. A sender makes one send() of 1 MiB; the receiver gets it in many pieces.
3. The same messages go through netkit.framing.LengthPrefixFramer: each is
   sent behind a 4-byte length, and the receiver's framer turns whatever the
   recv() calls return back into exactly the messages that were sent.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's root: its netkit, and examples/_common.py
from netkit.framing import LengthPrefixFramer  # noqa: E402

SMALL_MESSAGES = [b"hello", b"world", b"!"]
LARGE_MESSAGE = bytes(range(256)) * 4096  # 1 MiB
RECV_SIZE = 65536


def connected_pair() -> tuple[socket.socket, socket.socket]:
    """A TCP connection over loopback: (sender, receiver)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        sender = socket.create_connection(listener.getsockname())
        receiver, _ = listener.accept()
    return sender, receiver


def wait_until_buffered(sock: socket.socket, size: int) -> None:
    """Wait until the receiving kernel holds ``size`` unread bytes (peeking,
    not reading), as a busy receiver that reads late would find them."""
    while len(sock.recv(size, socket.MSG_PEEK)) < size:
        time.sleep(0.001)


def send_in_background(sock: socket.socket, data: bytes) -> threading.Thread:
    """sendall() blocks until the receiver makes room, so send from a thread."""
    thread = threading.Thread(target=sock.sendall, args=(data,))
    thread.start()
    return thread


def receive_exactly(sock: socket.socket, size: int) -> list[bytes]:
    """Call recv() until ``size`` bytes came; return what each call returned."""
    pieces = []
    received = 0
    while received < size:
        piece = sock.recv(min(RECV_SIZE, size - received))
        if not piece:
            raise ConnectionError("the sender closed early")
        pieces.append(piece)
        received += len(piece)
    return pieces


def describe(messages: list[bytes]) -> str:
    return " ".join(repr(m) if len(m) <= 16 else f"<{len(m):,} bytes>" for m in messages)


def show_sticky_packets() -> None:
    sender, receiver = connected_pair()
    with sender, receiver:
        print("1. Three send() calls on one side ...")
        for message in SMALL_MESSAGES:
            sender.send(message)
        print(f"   sent:     {describe(SMALL_MESSAGES)}  ({len(SMALL_MESSAGES)} send calls)")
        total = sum(map(len, SMALL_MESSAGES))
        wait_until_buffered(receiver, total)
        data = receiver.recv(RECV_SIZE)
        print(f"   ... one recv() on the other: {data!r}")
        print("   The boundaries are gone: where did one message end and the next begin?\n")

        print(f"2. One send() of {len(LARGE_MESSAGE):,} bytes ...")
        thread = send_in_background(sender, LARGE_MESSAGE)
        pieces = receive_exactly(receiver, len(LARGE_MESSAGE))
        thread.join()
        sizes = ", ".join(f"{len(p):,}" for p in pieces[:4])
        print(f"   ... arrives in {len(pieces)} recv() calls of {sizes}, ... bytes\n")


def show_framing() -> None:
    messages = [*SMALL_MESSAGES, LARGE_MESSAGE]
    framer = LengthPrefixFramer("!I")  # a 4-byte big-endian length before each message
    sender, receiver = connected_pair()
    with sender, receiver:
        print("3. The same messages, each behind a 4-byte length, through a framer:")
        wire = framer.encode_many(messages)
        thread = send_in_background(sender, wire)
        frames: list[bytes] = []
        recv_calls = 0
        while len(frames) < len(messages):
            data = receiver.recv(RECV_SIZE)
            if not data:
                raise ConnectionError("the sender closed early")
            recv_calls += 1
            frames += framer.feed(data)  # whole messages out, the rest kept
        thread.join()
        print(f"   {recv_calls} recv() calls in, {len(frames)} frames out: {describe(frames)}")
        if frames != messages:
            raise SystemExit("   the frames differ from the messages sent!")
        print("   Every message arrived whole, in order, exactly as sent.")


def main() -> None:
    show_sticky_packets()
    show_framing()


if __name__ == "__main__":
    main()
