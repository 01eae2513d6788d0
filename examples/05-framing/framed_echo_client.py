"""A framed echo client: send frames of random sizes, check every echo.

    python examples/05-framing/framed_echo_client.py --port 9001 --count 1000

It talks to examples/05-framing/framed_echo_server.py: each message is a 4-byte
big-endian length followed by the payload.  To show that framing does not
care how TCP cuts the byte stream, the client writes the encoded frames in
pieces cut at random points: many frames are split across writes, and many
writes carry several frames at once.  Meanwhile it reads the echoes with
``read_frame`` and checks that each is the frame it sent, whole and in order.

It prints a summary and exits with status 0 when every echo matched, 1 when
one did not or the connection failed.  ``--seed`` repeats a run exactly.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's root: its netkit, and examples/_common.py
import netkit  # noqa: E402
from netkit.framing import LengthPrefixFramer, read_frame  # noqa: E402
from examples._common import EXIT_INTERRUPTED, FRAMED_ECHO_PORT, plural  # noqa: E402


@dataclass
class Plan:
    """What the client will send: the payloads, and where the byte stream is cut."""

    payloads: list[bytes]
    wire: bytes
    cuts: list[int]  # offsets in ``wire`` where one write ends and the next begins

    @property
    def writes(self) -> list[bytes]:
        bounds = [0, *self.cuts, len(self.wire)]
        return [self.wire[start:end] for start, end in zip(bounds, bounds[1:])]

    def frames_split_across_writes(self, header_size: int = 4) -> int:
        """How many frames have a cut somewhere inside them."""
        cuts = set(self.cuts)
        split = 0
        start = 0
        for payload in self.payloads:
            end = start + header_size + len(payload)
            if any(cut in cuts for cut in range(start + 1, end)):
                split += 1
            start = end
        return split

    def writes_with_several_frames(self, header_size: int = 4) -> int:
        """How many writes contain the ends of two frames or more (sticky packets)."""
        frame_ends = []
        end = 0
        for payload in self.payloads:
            end += header_size + len(payload)
            frame_ends.append(end)
        bounds = [0, *self.cuts, len(self.wire)]
        several = 0
        index = 0
        for start, stop in zip(bounds, bounds[1:]):
            ends_here = 0
            while index < len(frame_ends) and frame_ends[index] <= stop:
                if frame_ends[index] > start:
                    ends_here += 1
                index += 1
            several += ends_here >= 2
        return several


def random_size(rng: random.Random, max_size: int) -> int:
    """Mostly small frames, some large ones, and the edge cases 0 and max_size."""
    kind = rng.random()
    if kind < 0.05:
        return rng.choice([0, max_size])
    if kind < 0.75:
        return rng.randint(1, min(256, max_size))
    return rng.randint(0, max_size)


def make_plan(count: int, max_size: int, rng: random.Random) -> Plan:
    framer = LengthPrefixFramer("!I")
    payloads = [rng.randbytes(random_size(rng, max_size)) for _ in range(count)]
    wire = framer.encode_many(payloads)
    # Cut the stream into pieces of a few bytes (which split headers), up to a
    # frame, or up to four frames on average (which glue several together).
    average_frame = max(1, len(wire) // max(1, count))
    cuts = []
    position = 0
    while True:
        position += rng.randint(1, rng.choice([8, average_frame, 4 * average_frame]))
        if position >= len(wire):
            break
        cuts.append(position)
    return Plan(payloads, wire, cuts)


async def send(writer: netkit.StreamWriter, plan: Plan) -> None:
    for piece in plan.writes:
        writer.write(piece)
        await writer.drain()  # wait while the server is behind: bounded memory


@dataclass
class Progress:
    """How many echoes have arrived intact so far."""

    echoes: int = 0


async def receive(reader: netkit.StreamReader, plan: Plan, progress: Progress) -> None:
    """Read one echo per frame sent and check it; raise ``EchoMismatch`` on a difference."""
    framer = LengthPrefixFramer("!I")
    for index, expected in enumerate(plan.payloads):
        echo = await read_frame(reader, framer)
        if echo is None:
            raise EchoMismatch("the server closed the connection")
        if echo != expected:
            raise EchoMismatch(f"echo {index} differs: sent {len(expected):,} bytes, got {len(echo):,} bytes back")
        progress.echoes += 1
    if await read_frame(reader, framer) is not None:
        raise EchoMismatch("the server sent more frames than the client did")


class EchoMismatch(Exception):
    """An echo that is not the frame that was sent."""


async def run_client(host: str, port: int, plan: Plan, progress: Progress) -> float:
    """Send the plan's writes while checking the echoes; return the seconds taken."""
    started = time.perf_counter()
    reader, writer = await netkit.open_connection(host, port)
    receiving = netkit.create_task(receive(reader, plan, progress))
    try:
        try:
            await send(writer, plan)
            writer.write_eof()  # done sending: the server closes once it has echoed everything
        except ConnectionError:
            pass  # the server dropped us; the receiving side tells after how many echoes
        await receiving
    except BaseException:
        # A mismatch, the timeout or Ctrl-C: drop the connection at once.  A
        # graceful close would first flush what is still buffered, and wait
        # forever for a server that has stopped reading.
        receiving.cancel()
        writer.transport.abort()
        raise
    writer.close()  # every echo is in: nothing is left to flush
    try:
        await writer.wait_closed()
    except ConnectionError:
        pass
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=FRAMED_ECHO_PORT, help=f"default {FRAMED_ECHO_PORT}, the framed echo server's")
    parser.add_argument("--count", type=int, default=1000, help="frames to send (default 1000)")
    parser.add_argument("--max-size", type=int, default=65536, help="largest payload, in bytes (default 65536)")
    parser.add_argument("--seed", type=int, default=None, help="random seed, to repeat a run")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up after this many seconds")
    args = parser.parse_args(argv)
    if args.count < 0 or args.max_size < 0:
        parser.error("--count and --max-size must be >= 0")
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    plan = make_plan(args.count, args.max_size, random.Random(seed))
    progress = Progress()
    try:
        seconds = netkit.run(netkit.wait_for(run_client(args.host, args.port, plan, progress), args.timeout))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED  # Ctrl-C: netkit.run cancelled the client, which closed its connection
    except (EchoMismatch, OSError, netkit.NetkitError, TimeoutError) as exc:
        reason = str(exc) if isinstance(exc, EchoMismatch) else f"{type(exc).__name__}: {exc}"
        print(f"FAILED after {progress.echoes:,} of {plural(len(plan.payloads), 'echo', 'echoes')} (seed {seed}): {reason}",
              file=sys.stderr)
        return 1
    payload_bytes = sum(map(len, plan.payloads))
    frames = len(plan.payloads)
    print(
        f"sent {plural(frames, 'frame')} ({plural(payload_bytes, 'byte')} of payload) in {plural(len(plan.writes), 'write')}; "
        f"cut across writes: {plural(plan.frames_split_across_writes(), 'frame')}; "
        f"writes carrying several frames: {plan.writes_with_several_frames():,}"
    )
    checked = "the echo came back intact" if frames == 1 else f"all {frames:,} echoes intact and in order"
    print(f"{checked} in {seconds:.2f} s (seed {seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
