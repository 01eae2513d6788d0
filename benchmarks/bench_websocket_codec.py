"""Throughput of netkit's WebSocket frame codec, against two naive designs.

Run from the repository root::

    python benchmarks/bench_websocket_codec.py [--quick]

It measures, on this machine and in this run:

* parsing 64-byte masked client frames (frames per second), fed in 64 KiB
  reads as a socket would deliver them;
* parsing 1 MiB masked frames (MB/s);
* unmasking a 1 MiB payload (MB/s);
* serializing 64-byte frames, unmasked (a server) and masked (a client),
  and 1 MiB masked frames;
* the same traffic through ``Connection`` (events and frames, not just
  frames), which is what an echo server pays per message.

The baselines are written here, deliberately simple: a parser that unmasks
with a Python loop over bytes, and a parser that keeps its input in a
``bytes`` buffer re-sliced after every frame (``buffer = buffer[n:]``).  Both
check less than ``FrameParser`` does, so the ratios are conservative.
Every number is the best of several runs, each timed with perf_counter.
"""

from __future__ import annotations

import os
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from netkit.websocket.connection import Connection, Role  # noqa: E402
from netkit.websocket.frames import BINARY, FrameParser, apply_mask, serialize_frame  # noqa: E402

READ_SIZE = 65536  # what one recv() typically returns under load
MIB = 1 << 20


# -- Baselines ---------------------------------------------------------------


def naive_unmask(data: bytes, key: bytes) -> bytes:
    """RFC 6455 §5.3 as written: one byte at a time."""
    return bytes(octet ^ key[index & 3] for index, octet in enumerate(data))


def bigint_unmask(data: bytes, key: bytes) -> bytes:
    """The plain big-integer XOR over the whole payload at once."""
    n = len(data)
    stream = int.from_bytes(key * ((n >> 2) + 1), "big") >> (8 * (4 - (n & 3)))
    return (int.from_bytes(data, "big") ^ stream).to_bytes(n, "big")


class _MinimalParser:
    """Parses masked frames with 7/16/64-bit lengths; no other checks."""

    def __init__(self, unmask: Callable[[bytes, bytes], bytes]) -> None:
        self.unmask = unmask

    def header(self, buffer: bytes, position: int) -> tuple[int, int] | None:
        """(payload start, payload length) of the frame at position, if complete."""
        available = len(buffer) - position
        if available < 2:
            return None
        length = buffer[position + 1] & 0x7F
        start = position + 2
        if length == 126:
            if available < 4:
                return None
            length = struct.unpack_from("!H", buffer, start)[0]
            start += 2
        elif length == 127:
            if available < 10:
                return None
            length = struct.unpack_from("!Q", buffer, start)[0]
            start += 8
        return start + 4, length


class PerByteXorParser(_MinimalParser):
    """A bytearray with offsets (like FrameParser), unmasking byte by byte."""

    def __init__(self) -> None:
        super().__init__(naive_unmask)
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        buffer = bytes(self.buffer)
        frames = []
        position = 0
        while (header := self.header(buffer, position)) is not None:
            start, length = header
            if len(buffer) < start + length:
                break
            frames.append(self.unmask(buffer[start : start + length], buffer[start - 4 : start]))
            position = start + length
        del self.buffer[:position]
        return frames


class ReslicingParser(_MinimalParser):
    """A bytes buffer: ``buffer += data`` per read, ``buffer = buffer[n:]`` per frame."""

    def __init__(self) -> None:
        super().__init__(bigint_unmask)
        self.buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        frames = []
        while (header := self.header(self.buffer, 0)) is not None:
            start, length = header
            if len(self.buffer) < start + length:
                break
            frames.append(self.unmask(self.buffer[start : start + length], self.buffer[start - 4 : start]))
            self.buffer = self.buffer[start + length :]
        return frames


# -- Measuring ---------------------------------------------------------------


def best_time(run: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def reads(data: bytes) -> list[bytes]:
    return [data[i : i + READ_SIZE] for i in range(0, len(data), READ_SIZE)]


def masked_stream(payload_size: int, count: int) -> bytes:
    payload = os.urandom(payload_size)
    return b"".join(serialize_frame(BINARY, payload, mask=True) for _ in range(count))


def parse_rate(make_parser: Callable[[], object], chunks: list[bytes], expected: int, repeat: int) -> float:
    """Seconds per frame parsing ``chunks``, ``expected`` frames, with fresh parsers.

    (A split_partial parser returns a frame cut by a read as two pieces,
    hence at least ``expected`` results.)
    """

    def run() -> None:
        parser = make_parser()
        count = 0
        for chunk in chunks:
            count += len(parser.feed(chunk))  # type: ignore[attr-defined]
        assert count >= expected, (count, expected)

    return best_time(run, repeat) / expected


def row(label: str, value: float, unit: str) -> None:
    print(f"  {label:<58} {value:>12,.0f} {unit}")


def main() -> None:
    quick = "--quick" in sys.argv
    repeat = 3 if quick else 7
    small_count = 20000 if quick else 100000
    print(f"Python {sys.version.split()[0]} on {sys.platform}; best of {repeat} runs; reads of {READ_SIZE} bytes\n")

    print("Parsing 64-byte masked client frames")
    small = reads(masked_stream(64, small_count))
    fast = 1 / parse_rate(lambda: FrameParser(expect_masked=True), small, small_count, repeat)
    streaming = 1 / parse_rate(lambda: FrameParser(expect_masked=True, split_partial=True), small, small_count, repeat)
    few = reads(masked_stream(64, small_count // 20))
    per_byte = 1 / parse_rate(PerByteXorParser, few, small_count // 20, repeat)
    reslicing = 1 / parse_rate(ReslicingParser, few, small_count // 20, repeat)
    row("FrameParser", fast, "frames/s")
    row("FrameParser(split_partial=True), as Connection uses it", streaming, "frames/s")
    row("baseline: per-byte XOR loop", per_byte, "frames/s")
    row("baseline: bytes buffer re-sliced per frame", reslicing, "frames/s")
    print(f"  -> FrameParser is {fast / per_byte:.1f}x the per-byte loop, {fast / reslicing:.1f}x the re-sliced buffer\n")

    print("Parsing 1 MiB masked frames")
    big_count = 8 if quick else 32
    big = reads(masked_stream(MIB, big_count))
    whole = MIB / parse_rate(lambda: FrameParser(expect_masked=True, max_message_size=None), big, big_count, repeat) / 1e6
    split = MIB / parse_rate(lambda: FrameParser(expect_masked=True, max_message_size=None, split_partial=True), big, big_count, repeat) / 1e6
    one = reads(masked_stream(MIB, 1))
    reslicing_big = MIB / parse_rate(ReslicingParser, one, 1, repeat) / 1e6
    per_byte_big = MIB / parse_rate(PerByteXorParser, one, 1, 1) / 1e6
    row("FrameParser (whole frames)", whole, "MB/s")
    row("FrameParser(split_partial=True) (pieces per read)", split, "MB/s")
    row("baseline: per-byte XOR loop", per_byte_big, "MB/s")
    row("baseline: bytes buffer re-sliced per frame (big-int XOR)", reslicing_big, "MB/s")
    print(f"  -> FrameParser is {whole / per_byte_big:.0f}x the per-byte loop, {whole / reslicing_big:.1f}x the re-sliced buffer\n")

    print("Unmasking a 1 MiB payload")
    payload = os.urandom(MIB)
    key = os.urandom(4)
    fast_mask = MIB / best_time(lambda: apply_mask(payload, key), repeat * 3) / 1e6
    bigint = MIB / best_time(lambda: bigint_unmask(payload, key), repeat * 3) / 1e6
    sample = payload[:65536]
    naive = len(sample) / best_time(lambda: naive_unmask(sample, key), repeat) / 1e6
    row("apply_mask (bytes.translate on strided slices)", fast_mask, "MB/s")
    row("baseline: one big-integer XOR", bigint, "MB/s")
    row("baseline: per-byte XOR loop", naive, "MB/s")
    print(f"  -> apply_mask is {fast_mask / naive:.0f}x the per-byte loop, {fast_mask / bigint:.1f}x the big integer\n")

    print("Serializing")
    count = small_count // 2
    small_payload = os.urandom(64)

    def serialize_many(mask: bool) -> None:
        for _ in range(count):
            serialize_frame(BINARY, small_payload, mask=mask)

    unmasked = count / best_time(lambda: serialize_many(False), repeat)
    masked = count / best_time(lambda: serialize_many(True), repeat)
    big_payload = os.urandom(MIB)
    big_masked = MIB / best_time(lambda: serialize_frame(BINARY, big_payload, mask=True), repeat * 3) / 1e6
    row("serialize_frame, 64 bytes, unmasked (server)", unmasked, "frames/s")
    row("serialize_frame, 64 bytes, masked (os.urandom per frame)", masked, "frames/s")
    row("serialize_frame, 1 MiB, masked", big_masked, "MB/s")
    print()

    print("Through Connection (what a shell pays per message)")
    events_rate = 1 / parse_rate(lambda: _ConnectionFeeder(Role.SERVER), small, small_count, repeat)

    def send_many(role: Role) -> None:
        conn = Connection(role)
        for _ in range(count):
            conn.send_binary(small_payload)
        conn.data_to_send()

    server_sends = count / best_time(lambda: send_many(Role.SERVER), repeat)
    client_sends = count / best_time(lambda: send_many(Role.CLIENT), repeat)
    row("server receive_data, 64-byte masked messages", events_rate, "msgs/s")
    row("server send_binary, 64 bytes", server_sends, "msgs/s")
    row("client send_binary, 64 bytes (masked, batched keys)", client_sends, "msgs/s")


class _ConnectionFeeder:
    """Adapts Connection to the parse_rate loop: events counted as frames."""

    def __init__(self, role: Role) -> None:
        self.connection = Connection(role)

    def feed(self, data: bytes) -> list[object]:
        return self.connection.receive_data(data)  # type: ignore[return-value]


if __name__ == "__main__":
    main()
