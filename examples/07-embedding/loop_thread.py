"""Use netkit from synchronous code: the loop on a background thread.

    python examples/07-embedding/loop_thread.py

A CLI, a Flask view or a script written without ``async`` keeps its main
thread and hands coroutines to a ``LoopThread``.  ``submit(coro)`` returns a
``concurrent.futures.Future`` that the synchronous side can wait on (with a
timeout), poll, or attach a callback to; ``run(coro)`` is submit-and-wait.
``call_soon(fn)`` runs a plain function on the loop thread.

Here the loop thread hosts an echo server and the main thread, which never
awaits anything, talks to it through coroutines it submits.
"""

from __future__ import annotations

import concurrent.futures
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's root: its netkit, and examples/_common.py
import netkit  # noqa: E402

# A synchronous caller should never wait forever on the network.
TIMEOUT = 10.0


async def start_echo_server() -> netkit.Server:
    async def echo(reader: netkit.StreamReader, writer: netkit.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(line.upper())
            await writer.drain()
        writer.close()

    return await netkit.start_server(echo, "127.0.0.1", 0)


async def ask(port: int, text: str) -> str:
    """One client connection: send a line, return the answer."""
    reader, writer = await netkit.open_connection("127.0.0.1", port)
    writer.write(text.encode() + b"\n")
    answer = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return answer.decode().strip()


async def stop_server(server: netkit.Server) -> None:
    server.close()
    await server.wait_closed()


def main() -> None:
    with netkit.LoopThread() as loop_thread:  # leaving the block stops the thread and closes the loop
        server = loop_thread.run(start_echo_server(), timeout=TIMEOUT)
        port = server.sockets[0].getsockname()[1]
        print(f"echo server on 127.0.0.1:{port}, served from the loop thread")

        # run(): submit and wait, like calling a function.
        print("run():", loop_thread.run(ask(port, "hello"), timeout=TIMEOUT))

        # submit(): start several, do other things, collect the results later.
        futures = [loop_thread.submit(ask(port, word)) for word in ("one", "two", "three")]
        done, _ = concurrent.futures.wait(futures, timeout=TIMEOUT)
        print("submit():", [future.result() for future in futures], f"({len(done)} done)")

        # call_soon(): a plain function on the loop thread (it may touch loop objects).
        ran = threading.Event()
        loop_thread.call_soon(lambda: (print("call_soon(): on", threading.current_thread().name), ran.set()))
        ran.wait(TIMEOUT)

        loop_thread.run(stop_server(server), timeout=TIMEOUT)
    print("loop thread stopped; back to plain synchronous code")


if __name__ == "__main__":
    main()
