"""Pump a netkit loop from a program's own main loop (a game loop, here).

    python examples/07-embedding/run_once.py

A game (or a GUI toolkit, or a simulation) already owns the main loop: it
draws a frame, updates the world, and waits for the next frame.  Instead of
handing control to ``loop.run_forever()``, it calls ``loop.run_once(timeout)``
once per frame: netkit polls its sockets for at most ``timeout`` seconds, runs
whatever became ready (callbacks, task steps, timers that are due), and
returns.

Here the game spends the rest of each frame inside ``run_once``, so the
network is served while the game would otherwise just sleep.  Everything runs
on one thread, so the score server reads the game's state directly, with no
locks: a callback never runs in the middle of ``update()``.

The score server answers ``score?`` lines over TCP; a client task on the same
loop asks a few times, then the game ends.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's root: its netkit, and examples/_common.py
import netkit  # noqa: E402
from examples._common import plural  # noqa: E402

FRAME_SECONDS = 1 / 20  # a 20 frames-per-second "game": slow enough to read the output
MAX_FRAMES = 2000  # a safety stop: the game ends well before this


class Game:
    """The host program's own state and work."""

    def __init__(self) -> None:
        self.frame = 0
        self.score = 0

    def update(self) -> None:
        self.frame += 1
        self.score += 10


# The longest question line the score server holds while waiting for its
# newline: "score?" is 6 bytes, so 1 KiB leaves room and bounds a peer that
# never sends one.
MAX_LINE = 1024


class ScoreServer(netkit.Protocol):
    """Answers every ``score?`` line with the game's current score."""

    def __init__(self, game: Game) -> None:
        self.game = game
        self.buffer = bytearray()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        start = 0
        while (end := self.buffer.find(b"\n", start)) >= 0:
            if self.buffer[start:end] == b"score?":
                # Same thread as the game: reading its state needs no lock.
                self.transport.write(f"score {self.game.score} at frame {self.game.frame}\n".encode())
            start = end + 1
        del self.buffer[:start]  # once per read: linear in what arrived
        if len(self.buffer) > MAX_LINE:
            self.transport.close()  # a line this long is no question

    # Stop reading while the answers are not being read (see docs/tcp-udp.md).

    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()


async def spectator(port: int, questions: int, pause: float) -> list[str]:
    """A client on the same loop: ask for the score a few times."""
    reader, writer = await netkit.open_connection("127.0.0.1", port)
    answers = []
    for _ in range(questions):
        writer.write(b"score?\n")
        answer = (await reader.readline()).decode().strip()
        print(f"  spectator heard: {answer}", flush=True)
        answers.append(answer)
        await netkit.sleep(pause)  # a netkit timer: it fires only while the loop is pumped
    writer.close()
    await writer.wait_closed()
    return answers


def main(questions: int, pause: float) -> None:
    game = Game()
    loop = netkit.EventLoop()
    # Setting up can use run_until_complete: it returns as soon as the server listens.
    server = loop.run_until_complete(loop.create_server(lambda: ScoreServer(game), "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    print(f"score server on 127.0.0.1:{port}; the game loop pumps netkit every frame", flush=True)
    watcher = loop.create_task(spectator(port, questions, pause))

    next_frame = time.monotonic()
    while not watcher.done() and game.frame < MAX_FRAMES:
        game.update()  # the host's own work for this frame
        next_frame += FRAME_SECONDS
        # Serve the network until the next frame is due; run_once returns
        # early when something happened, so call it until the time is up.
        while (remaining := next_frame - time.monotonic()) > 0:
            loop.run_once(remaining)

    print(f"game over at frame {game.frame}, score {game.score}", flush=True)
    answers = watcher.result()
    server.close()
    loop.run_until_complete(server.wait_closed())
    loop.close()
    print(f"the spectator got {plural(len(answers), 'answer')}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=5, help="how many times the spectator asks (default 5)")
    parser.add_argument("--pause", type=float, default=0.3, help="seconds between questions (default 0.3)")
    args = parser.parse_args()
    main(args.questions, args.pause)
