"""Blocking reads, non-blocking reads, and select(): one program, three ways.

    python examples/02-blocking/blocking_vs_nonblocking.py

Three connections (socket pairs, so no server is needed) get a message each
from a sender thread, in the order B, C, A, ``--delay`` seconds apart.  The
reader wants to handle each message as soon as it arrives.

1. Blocking: ``recv()`` on A waits until A has data.  B and C were ready long
   before, but nobody looks at them: one silent peer holds up everyone.
2. Non-blocking: ``recv()`` never waits; on an empty socket it raises
   ``BlockingIOError`` at once.  Nothing is held up, but asking every socket
   in a loop burns a CPU core to find out that nothing happened.
3. Non-blocking + ``select()``: one call sleeps until *any* socket is
   readable and says which.  Messages are handled in the order they arrive,
   and waiting costs nothing.  This is what netkit's event loop does
   (with ``selectors``, which picks epoll or kqueue when there is one).
"""

from __future__ import annotations

import argparse
import select
import socket
import threading
import time

NAMES = ["A", "B", "C"]
SEND_ORDER = ["B", "C", "A"]


def make_connections() -> tuple[dict[str, socket.socket], dict[str, socket.socket]]:
    """Three connected pairs: the reader's ends and the sender's ends, by name."""
    readers, senders = {}, {}
    for name in NAMES:
        readers[name], senders[name] = socket.socketpair()
    return readers, senders


def send_later(senders: dict[str, socket.socket], delay: float) -> threading.Thread:
    """A thread that sends one message on each connection, in SEND_ORDER, ``delay`` apart."""

    def run() -> None:
        for name in SEND_ORDER:
            time.sleep(delay)  # the peer is slow to speak: this is what we wait for
            senders[name].sendall(f"hello from {name}".encode())

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def blocking(delay: float) -> list[str]:
    """Read A, then B, then C, each with a blocking recv()."""
    readers, senders = make_connections()
    start = time.monotonic()
    sender = send_later(senders, delay)
    handled = []
    for name in NAMES:
        data = readers[name].recv(1024)  # sleeps here until this socket has data
        print(f"  {time.monotonic() - start:5.2f} s  {name}: {data.decode()}")
        handled.append(name)
    sender.join()
    for sock in [*readers.values(), *senders.values()]:
        sock.close()
    return handled


def nonblocking_poll_once() -> str:
    """One non-blocking recv() on a socket with nothing to read."""
    reader, sender = socket.socketpair()
    reader.setblocking(False)
    try:
        reader.recv(1024)
        outcome = "data"
    except BlockingIOError:
        outcome = "BlockingIOError: no data yet, and no waiting"
    finally:
        reader.close()
        sender.close()
    print(f"  recv() on an empty non-blocking socket -> {outcome}")
    return outcome


def with_select(delay: float) -> list[str]:
    """Wait for any of the sockets with select(); handle each as it becomes readable."""
    readers, senders = make_connections()
    by_socket = {sock: name for name, sock in readers.items()}
    for sock in readers.values():
        sock.setblocking(False)
    start = time.monotonic()
    sender = send_later(senders, delay)
    handled: list[str] = []
    waiting = list(readers.values())
    while waiting:
        ready, _, _ = select.select(waiting, [], [])  # sleeps until at least one is readable
        for sock in ready:
            data = sock.recv(1024)  # will not block: select said there is data
            name = by_socket[sock]
            print(f"  {time.monotonic() - start:5.2f} s  {name}: {data.decode()}")
            handled.append(name)
            waiting.remove(sock)
    sender.join()
    for sock in [*readers.values(), *senders.values()]:
        sock.close()
    return handled


def main(delay: float) -> None:
    print(f"messages are sent in the order {', '.join(SEND_ORDER)}, {delay} s apart\n")
    print("1. blocking recv() on A, then B, then C:")
    order = blocking(delay)
    print(f"  handled in the order {', '.join(order)}: B and C waited for A\n")
    print("2. a non-blocking socket:")
    nonblocking_poll_once()
    print()
    print("3. non-blocking sockets and select():")
    order = with_select(delay)
    print(f"  handled in the order {', '.join(order)}: each as soon as it arrived")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.5, help="seconds between messages (default 0.5)")
    main(parser.parse_args().delay)
