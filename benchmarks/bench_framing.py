"""How fast netkit's framers decode, next to the usual alternatives.

    python benchmarks/bench_framing.py            # every section
    python benchmarks/bench_framing.py decode     # some sections
    python benchmarks/bench_framing.py --quick    # smaller inputs, fewer repeats

Each section times several ways of doing the same work on the same input in
the same run and prints each one's rate and its ratio to netkit's.

``decode``: 64-byte frames (4-byte big-endian length prefix) arriving in
64 KiB chunks, and 1 MiB frames arriving in 64 KiB chunks, decoded by

* netkit's ``LengthPrefixFramer.feed``;
* the usual hand-written loop: a ``bytes`` buffer that grows by each chunk and
  is re-sliced after each frame, with ``struct.unpack`` on its first 4 bytes;
* asyncio's ``StreamReader`` with ``readexactly(4)`` then ``readexactly(n)``
  per frame, the chunks fed in as a transport would;
* netkit's ``read_frame`` on that same asyncio ``StreamReader``.

``varint``: the 64-byte frames with a LEB128 varint prefix, decoded by netkit
and by a hand-written decoder (per-byte varint loop, re-sliced buffer).

``lines``: 64-byte newline-terminated lines in 64 KiB chunks, decoded by
``DelimitedFramer``, by a hand-written ``find`` loop, and by asyncio's
``readline()``.

``encode``: 64-byte frames encoded one by one and as one batch, and the cost of
copying a payload behind its header next to handing both to a ``sendmsg``-style
``writelines`` (which wraps each buffer in a memoryview): where that crosses is
the size above which ``send_frame`` stops copying.

A section is a function registered in ``SECTIONS``; sections that need a
running server (framed echo over loopback) are added the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import struct
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from netkit.framing import DelimitedFramer, LengthPrefixFramer, read_frame  # noqa: E402

CHUNK_SIZE = 64 * 1024
HEADER = struct.Struct("!I")


@dataclass
class Measurement:
    name: str
    seconds: float
    frames: int
    payload_bytes: int


@dataclass
class Options:
    quick: bool

    @property
    def repeats(self) -> int:
        return 3 if self.quick else 7


def best_time(run: Callable[[], int], repeats: int) -> tuple[float, int]:
    """Fastest of ``repeats`` runs (the least disturbed by the rest of the
    machine) and the frame count the run returned."""
    best = float("inf")
    count = 0
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        count = run()
        best = min(best, time.perf_counter() - start)
    return best, count


def chunked(data: bytes, size: int = CHUNK_SIZE) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


# -- the decoders under test ----------------------------------------------------------


def decode_netkit(chunks: list[bytes]) -> int:
    framer = LengthPrefixFramer("!I")
    count = 0
    for chunk in chunks:
        count += len(framer.feed(chunk))
    return count


def decode_hand_written(chunks: list[bytes]) -> int:
    """The loop found in countless tutorials and answers."""
    buffer = b""
    frames = []
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= 4:
            (length,) = struct.unpack("!I", buffer[:4])
            if len(buffer) < 4 + length:
                break
            frames.append(buffer[4 : 4 + length])
            buffer = buffer[4 + length :]
    return len(frames)


def run_on_stream_reader(chunks: list[bytes], consume: Callable[[asyncio.StreamReader], object]) -> int:
    """Feed ``chunks`` into an asyncio StreamReader as a transport would (one
    chunk per loop iteration) while ``consume(reader)`` reads frames from it."""

    async def main() -> int:
        reader = asyncio.StreamReader(limit=2**30)

        async def produce() -> None:
            for chunk in chunks:
                reader.feed_data(chunk)
                await asyncio.sleep(0)
            reader.feed_eof()

        producer = asyncio.get_running_loop().create_task(produce())
        count = await consume(reader)  # type: ignore[misc]
        await producer
        return count

    return asyncio.run(main())


def decode_varint_netkit(chunks: list[bytes]) -> int:
    framer = LengthPrefixFramer("varint")
    count = 0
    for chunk in chunks:
        count += len(framer.feed(chunk))
    return count


def decode_varint_hand_written(chunks: list[bytes]) -> int:
    buffer = b""
    frames = []
    for chunk in chunks:
        buffer += chunk
        while True:
            length = shift = pos = 0
            complete = False
            while pos < len(buffer):
                byte = buffer[pos]
                pos += 1
                length |= (byte & 0x7F) << shift
                shift += 7
                if byte < 0x80:
                    complete = True
                    break
            if not complete or len(buffer) < pos + length:
                break
            frames.append(buffer[pos : pos + length])
            buffer = buffer[pos + length :]
    return len(frames)


async def consume_readexactly(reader: asyncio.StreamReader) -> int:
    count = 0
    unpack = HEADER.unpack
    while True:
        try:
            header = await reader.readexactly(4)
        except asyncio.IncompleteReadError:
            return count
        (length,) = unpack(header)
        await reader.readexactly(length)
        count += 1


async def consume_read_frame(reader: asyncio.StreamReader) -> int:
    framer = LengthPrefixFramer("!I")
    count = 0
    while await read_frame(reader, framer) is not None:
        count += 1
    return count


def decode_lines_netkit(chunks: list[bytes]) -> int:
    framer = DelimitedFramer(b"\n")
    count = 0
    for chunk in chunks:
        count += len(framer.feed(chunk))
    return count


def decode_lines_hand_written(chunks: list[bytes]) -> int:
    buffer = b""
    lines = []
    for chunk in chunks:
        buffer += chunk
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                break
            lines.append(buffer[:end])
            buffer = buffer[end + 1 :]
    return len(lines)


async def consume_readline(reader: asyncio.StreamReader) -> int:
    count = 0
    while await reader.readline():
        count += 1
    return count


# -- sections ---------------------------------------------------------------------------


def check_target(results: list[Measurement], name: str, target: float) -> None:
    """Print whether netkit (the first result) is at least ``target`` times faster than ``name``."""
    [other] = [m for m in results if m.name == name]
    ratio = other.seconds / results[0].seconds
    verdict = "met" if ratio >= target else "MISSED"
    print(f"  target: {target:g}x {name}: {ratio:.1f}x, {verdict}")


def compare(title: str, unit: str, runs: Iterable[tuple[str, Callable[[], int]]], options: Options,
            payload_size: int) -> list[Measurement]:
    """Time each run, check they agree on the frame count, print a table."""
    results = []
    for name, run in runs:
        seconds, frames = best_time(run, options.repeats)
        results.append(Measurement(name, seconds, frames, frames * payload_size))
    counts = {m.frames for m in results}
    if len(counts) != 1:
        raise SystemExit(f"{title}: the decoders disagree on the frame count: {counts}")
    reference = results[0]
    print(f"\n{title}")
    for m in results:
        if unit == "frames/s":
            rate = f"{m.frames / m.seconds:>14,.0f} frames/s  {m.seconds / m.frames * 1e9:8.0f} ns/frame"
        else:
            rate = f"{m.payload_bytes / m.seconds / 1e6:>14,.0f} MB/s"
        ratio = m.seconds / reference.seconds
        if m is reference:
            note = ""
        elif ratio >= 1:
            note = f"   netkit is {ratio:5.1f}x faster"
        else:
            note = f"   netkit is {1 / ratio:5.1f}x slower"
        print(f"  {m.name:<38}{rate}{note}")
    return results


def section_decode(options: Options) -> None:
    small_count = 20_000 if options.quick else 200_000
    small_payload = bytes(range(64))
    small = chunked((HEADER.pack(64) + small_payload) * small_count)
    results = compare(
        f"decode {small_count:,} frames of 64 bytes (+4-byte header) in 64 KiB chunks",
        "frames/s",
        [
            ("netkit LengthPrefixFramer.feed", lambda: decode_netkit(small)),
            ("hand-written bytes buffer + unpack", lambda: decode_hand_written(small)),
            ("asyncio StreamReader.readexactly", lambda: run_on_stream_reader(small, consume_readexactly)),
            ("netkit read_frame on StreamReader", lambda: run_on_stream_reader(small, consume_read_frame)),
        ],
        options,
        64,
    )
    check_target(results, "hand-written bytes buffer + unpack", 3)
    check_target(results, "asyncio StreamReader.readexactly", 5)
    large_count = 16 if options.quick else 64
    mib = 1024 * 1024
    large_payload = bytes(mib)
    large = chunked((HEADER.pack(mib) + large_payload) * large_count)
    compare(
        f"decode {large_count} frames of 1 MiB in 64 KiB chunks",
        "MB/s",
        [
            ("netkit LengthPrefixFramer.feed", lambda: decode_netkit(large)),
            ("hand-written bytes buffer + unpack", lambda: decode_hand_written(large)),
            ("asyncio StreamReader.readexactly", lambda: run_on_stream_reader(large, consume_readexactly)),
            ("netkit read_frame on StreamReader", lambda: run_on_stream_reader(large, consume_read_frame)),
        ],
        options,
        mib,
    )


def section_lines(options: Options) -> None:
    count = 20_000 if options.quick else 200_000
    lines = chunked((b"x" * 63 + b"\n") * count)
    compare(
        f"decode {count:,} lines of 64 bytes in 64 KiB chunks",
        "frames/s",
        [
            ("netkit DelimitedFramer.feed", lambda: decode_lines_netkit(lines)),
            ("hand-written bytes buffer + find", lambda: decode_lines_hand_written(lines)),
            ("asyncio StreamReader.readline", lambda: run_on_stream_reader(lines, consume_readline)),
        ],
        options,
        63,
    )


def section_varint(options: Options) -> None:
    count = 20_000 if options.quick else 200_000
    frames = chunked(LengthPrefixFramer("varint").encode(bytes(range(64))) * count)
    compare(
        f"decode {count:,} frames of 64 bytes (+1-byte varint) in 64 KiB chunks",
        "frames/s",
        [
            ("netkit LengthPrefixFramer('varint')", lambda: decode_varint_netkit(frames)),
            ("hand-written varint loop + re-slice", lambda: decode_varint_hand_written(frames)),
        ],
        options,
        64,
    )


def per_call_ns(statement: Callable[[], object], number: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            statement()
        best = min(best, time.perf_counter() - start)
    return best / number * 1e9


def section_encode(options: Options) -> None:
    count = 1_000 if options.quick else 10_000
    framer = LengthPrefixFramer("!I")
    payloads = [bytes(64)] * count
    pack = HEADER.pack
    compare(
        f"encode {count:,} frames of 64 bytes",
        "frames/s",
        [
            ("netkit encode_many (one bytes)", lambda: len(framer.encode_many(payloads)) and count),
            ("netkit encode, one call per frame", lambda: len([framer.encode(p) for p in payloads])),
            ("hand-written join of pack + payload", lambda: len(b"".join([pack(len(p)) + p for p in payloads])) and count),
        ],
        options,
        64,
    )
    print("\ncopy a payload behind its header, or hand both to writelines()?")
    number = 2_000 if options.quick else 20_000
    for size in (1024, 4096, 16384, 65536, 262144):
        payload = bytes(size)
        header = framer.header(size)
        copy = per_call_ns(lambda: header + payload, number, options.repeats)
        views = per_call_ns(lambda: (memoryview(header), memoryview(payload)), number, options.repeats)
        print(f"  {size:>7,} bytes: copy {copy:6.0f} ns, two memoryviews {views:4.0f} ns")


SECTIONS: dict[str, Callable[[Options], None]] = {
    "decode": section_decode,
    "varint": section_varint,
    "lines": section_lines,
    "encode": section_encode,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sections", nargs="*", choices=[[], *SECTIONS], help="sections to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller inputs and fewer repeats")
    args = parser.parse_args(argv)
    options = Options(quick=args.quick)
    print(f"Python {sys.version.split()[0]} on {sys.platform}, {os.cpu_count()} CPUs")
    for name in args.sections or SECTIONS:
        SECTIONS[name](options)


if __name__ == "__main__":
    main()
