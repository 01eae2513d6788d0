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

``adapter``: what ``FramedProtocol`` itself costs per read for an echo (decode
the read, hand the frames over, encode the replies), on a transport that
drops what is written: reads of 1, 8 and 64 frames of 256 bytes, whole or cut
inside a frame, answered with one write per read or one per frame.

``loopback``: framed echo over real loopback sockets.  Each server runs in its
own process pinned to CPU 1 and the C load generator
(``/tmp/netkit-tools/loadgen framed``, see ``/work/shared/tools/README.md``)
runs pinned to CPU 0, keeping 8 frames of 256 bytes in flight on each of 50
connections and checking every echoed byte.  The servers:

* netkit: ``examples/05-framing/framed_echo_server.py``, a ``FramedProtocol`` subclass
  that answers each read's frames with one ``send_frames``, on netkit's loop;
* netkit, one write per frame: the same protocol answering each frame with
  its own ``send_frame``, which shows what batching the writes saves
  (``benchmarks/framed_echo_variants.py --loop netkit --style per-frame``);
* asyncio, same protocol: the example's class on an asyncio loop
  (``--loop asyncio --style protocol``), which compares the loops alone;
* asyncio streams: the usual asyncio framed server, ``readexactly`` for the
  header then the body, one write per frame (``--loop asyncio --style streams``);
* echo_c: the single-threaded epoll C server, the practical ceiling.

The servers take turns, round after round, and the table gives medians.  The
machine may be shared, so next to frames per second it gives each server's
CPU time (utime + stime from ``/proc/PID/stat``) during the measured seconds
and the frames it echoed per CPU-second, which other load disturbs less.
Extra rows repeat the run with ``--batch 8`` (8 frames per client write) and
``--split`` (client writes cut at random points).

A section is a function registered in ``SECTIONS``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

BENCHMARKS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCHMARKS)
sys.path.insert(0, ROOT)

from netkit.framing import DelimitedFramer, FramedProtocol, LengthPrefixFramer, read_frame  # noqa: E402

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
    rounds: int = 3
    seconds: float = 3.0
    loadgen: str = "/tmp/netkit-tools/loadgen"
    echo_c: str = "/tmp/netkit-tools/echo_c"

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


class NullTransport:
    """Accepts writes and drops them: what FramedProtocol costs without any I/O."""

    def write(self, data: object) -> None:
        pass

    def writelines(self, parts: object) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


class BatchingEcho(FramedProtocol):
    """The echo of examples/05-framing/framed_echo_server.py: one write per read."""

    def frames_received(self, frames: list[bytes]) -> None:
        self.send_frames(frames)


class FrameAtATimeEcho(FramedProtocol):
    """The same echo written the obvious way: one write per frame."""

    def frame_received(self, frame: bytes) -> None:
        self.send_frame(frame)


def echo_reads(protocol_class: type[FramedProtocol], reads: list[bytes], frames_per_read: int) -> int:
    protocol = protocol_class()
    protocol.connection_made(NullTransport())
    data_received = protocol.data_received
    for data in reads:
        data_received(data)
    return len(reads) * frames_per_read


def section_adapter(options: Options) -> None:
    """FramedProtocol's own cost per read: decode, deliver, encode the replies."""
    read_count = 20_000 if options.quick else 100_000
    print("\nFramedProtocol echo per read: 256-byte frames, on a transport that drops writes")
    print("(on a socket each write is also a send() system call, which costs more than all of this)")
    for frames_per_read in (1, 8, 64):
        chunk = LengthPrefixFramer("!I").encode_many([bytes(256)] * frames_per_read)
        cut = len(chunk) // 2 + 3  # inside a frame's body
        whole = [chunk] * read_count
        cut_reads = [chunk[:cut], chunk[cut:]] * (read_count // 2)
        runs = [
            ("one write per read, reads end with a frame", BatchingEcho, whole),
            ("one write per read, reads cut inside a frame", BatchingEcho, cut_reads),
            ("one write per frame (send_frame)", FrameAtATimeEcho, whole),
        ]
        print(f"  {frames_per_read} frame(s) per read")
        for name, protocol_class, reads in runs:
            seconds, frames = best_time(lambda: echo_reads(protocol_class, reads, frames_per_read), options.repeats)
            if protocol_class is BatchingEcho and reads is cut_reads:
                frames //= 2  # two reads carry one read's worth of frames
            per_read = seconds / len(reads) * 1e6
            print(f"    {name:<48}{per_read:8.2f} µs/read {seconds / frames * 1e9:8.0f} ns/frame")


# -- framed echo over loopback ------------------------------------------------------------

# The server and the load generator each get a core of their own, so that
# neither steals time from the other (this is a 2-core machine).
SERVER_CPU = 1
LOADGEN_CPU = 0
LOADGEN_WARMUP = 1.0  # seconds loadgen runs before it starts measuring
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# The load of the target: 50 connections, each keeping 8 frames of 256 bytes in flight.
LOAD_ARGS = ["-c", "50", "-s", "256", "-d", "8"]
# A Python server busy less than this share of its CPU was not the bottleneck:
# each should be near 100% under this load on a machine with nothing else to do.
SATURATED = 0.9


@dataclass
class EchoServer:
    """A framed echo server to start; ``{port}`` in ``argv`` is replaced by the port."""

    name: str
    argv: list[str]
    announces_port: bool  # prints "... listening on HOST:PORT" when given port 0


@dataclass
class Load:
    """Extra loadgen options on top of ``LOAD_ARGS``."""

    title: str
    extra: list[str]


@dataclass
class EchoRun:
    """What one server did under one load for one measured period."""

    frames_per_s: float
    p99_us: float
    frames: int
    wall_seconds: float
    cpu_seconds: float

    @property
    def frames_per_cpu_second(self) -> float:
        return self.frames / self.cpu_seconds if self.cpu_seconds > 0 else float("nan")

    @property
    def cpu_share(self) -> float:
        """Fraction of one core the server used while measured."""
        return self.cpu_seconds / self.wall_seconds


def can_pin() -> bool:
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) > max(SERVER_CPU, LOADGEN_CPU)


def pinned(cpu: int, argv: list[str]) -> list[str]:
    """``argv`` run on CPU ``cpu`` only, when the machine allows it."""
    return ["taskset", "-c", str(cpu), *argv] if can_pin() else argv


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` so far (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        # The command name (field 2) may contain spaces; the fields after it do not.
        fields = stat.read().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLOCK_TICKS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_listening(port: int, process: subprocess.Popen[str], within: float = 10.0) -> None:
    """Poll until something accepts on ``port`` (for servers that print nothing)."""
    deadline = time.monotonic() + within
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with status {process.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"nothing is listening on port {port} after {within} s") from None
            time.sleep(0.02)


def start_server(server: EchoServer) -> tuple[subprocess.Popen[str], int]:
    """Start ``server`` pinned to SERVER_CPU; return the process and its port."""
    if server.announces_port:
        argv = [arg.replace("{port}", "0") for arg in server.argv]
        process = subprocess.Popen(pinned(SERVER_CPU, argv), stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None
        line = process.stdout.readline()  # "... listening on 127.0.0.1:PORT ..."
        if "listening on " not in line:
            process.kill()
            process.wait()
            raise SystemExit(f"{server.name} did not start: {line!r}")
        address = line.split("listening on ", 1)[1].split()[0]
        return process, int(address.rsplit(":", 1)[1])
    port = free_port()
    argv = [arg.replace("{port}", str(port)) for arg in server.argv]
    process = subprocess.Popen(pinned(SERVER_CPU, argv), stdout=subprocess.DEVNULL, text=True)
    wait_until_listening(port, process)
    return process, port


def stop_server(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()


def run_echo(server: EchoServer, load: Load, options: Options) -> EchoRun:
    """Start ``server``, put ``load`` on it with loadgen, return what loadgen measured
    and the server's CPU time over the same seconds."""
    process, port = start_server(server)
    try:
        argv = [options.loadgen, "framed", "-p", str(port), *LOAD_ARGS,
                "-t", f"{options.seconds:g}", "-w", f"{LOADGEN_WARMUP:g}", *load.extra]
        client = subprocess.Popen(pinned(LOADGEN_CPU, argv), stdout=subprocess.PIPE, text=True)
        # Sample the server's CPU time when loadgen starts measuring and when it
        # is done; loadgen's own clock decides the period, so this is within a
        # few milliseconds of it.
        time.sleep(LOADGEN_WARMUP)
        cpu_start, wall_start = process_cpu_seconds(process.pid), time.monotonic()
        output, _ = client.communicate(timeout=options.seconds + LOADGEN_WARMUP + 60)
        cpu_end, wall_end = process_cpu_seconds(process.pid), time.monotonic()
    finally:
        stop_server(process)
    if client.returncode != 0:
        raise SystemExit(f"loadgen failed against {server.name} (status {client.returncode})")
    report = json.loads(output.strip().splitlines()[-1])
    failures = {key: report[key] for key in ("errors", "mismatches", "proto_errors", "disconnects") if report.get(key)}
    if failures:
        raise SystemExit(f"{server.name} under {load.title}: loadgen reported {failures}")
    return EchoRun(report["msgs_per_s"], report["lat_p99_us"], report["msgs"], wall_end - wall_start, cpu_end - cpu_start)


@dataclass
class EchoSummary:
    """The median of each figure over the rounds (each taken separately, so
    frames/CPU-s is the median of the rounds' own ratios)."""

    frames_per_s: float
    p99_us: float
    cpu_share: float
    frames_per_cpu_second: float

    @classmethod
    def of(cls, runs: list[EchoRun]) -> EchoSummary:
        return cls(
            statistics.median(r.frames_per_s for r in runs),
            statistics.median(r.p99_us for r in runs),
            statistics.median(r.cpu_share for r in runs),
            statistics.median(r.frames_per_cpu_second for r in runs),
        )


NETKIT = "netkit FramedProtocol"
NETKIT_PER_FRAME = "netkit, one write per frame"
ASYNCIO_PROTOCOL = "asyncio, same FramedProtocol"
ASYNCIO_STREAMS = "asyncio streams, readexactly"
ECHO_C = "echo_c (C, epoll)"


def section_loopback(options: Options) -> None:
    missing = [tool for tool in (options.loadgen, options.echo_c) if not os.access(tool, os.X_OK)]
    if missing:
        print(f"\nframed echo over loopback: skipped, {', '.join(missing)} not built "
              "(make -C /work/shared/tools)")
        return
    python = sys.executable
    variants = [python, os.path.join(BENCHMARKS, "framed_echo_variants.py")]
    servers = [
        EchoServer(NETKIT, [python, os.path.join(ROOT, "examples", "05-framing", "framed_echo_server.py"), "--port", "{port}"], True),
        EchoServer(NETKIT_PER_FRAME, [*variants, "--loop", "netkit", "--style", "per-frame", "--port", "{port}"], True),
        EchoServer(ASYNCIO_PROTOCOL, [*variants, "--loop", "asyncio", "--style", "protocol", "--port", "{port}"], True),
        EchoServer(ASYNCIO_STREAMS, [*variants, "--loop", "asyncio", "--style", "streams", "--port", "{port}"], True),
        EchoServer(ECHO_C, [options.echo_c, "--mode", "framed", "--port", "{port}"], False),
    ]
    loads = [
        Load("one frame per client write", []),
        Load("--batch 8: 8 frames per client write", ["--batch", "8"]),
        Load("--split: client writes cut at random points", ["--split"]),
    ]
    rounds = 1 if options.quick else options.rounds
    placement = (f"server on CPU {SERVER_CPU}, loadgen on CPU {LOADGEN_CPU}" if can_pin()
                 else "not pinned (no taskset or a single CPU)")
    print(f"\nframed echo over loopback: loadgen framed {' '.join(LOAD_ARGS)} -t {options.seconds:g}; "
          f"{placement}; median of {rounds} interleaved round(s)")
    for load_index, load in enumerate(loads):
        runs: dict[str, list[EchoRun]] = {server.name: [] for server in servers}
        for round_index in range(rounds):
            # Rotate the order so that no server always runs first or last.
            shift = round_index % len(servers)
            for server in servers[shift:] + servers[:shift]:
                runs[server.name].append(run_echo(server, load, options))
        medians = {name: EchoSummary.of(server_runs) for name, server_runs in runs.items()}
        print(f"\n  {load.title}")
        print(f"  {'server':<30}{'frames/s':>11}  {'(min - max)':^25}{'p99 µs':>8}"
              f"{'CPU used':>10}{'frames/CPU-s':>14}")
        for name, m in medians.items():
            low = min(r.frames_per_s for r in runs[name])
            high = max(r.frames_per_s for r in runs[name])
            print(f"  {name:<30}{m.frames_per_s:>11,.0f}  ({low:>10,.0f} - {high:>10,.0f}){m.p99_us:>8,.0f}"
                  f"{m.cpu_share:>9.0%} {m.frames_per_cpu_second:>13,.0f}")
        starved = [name for name, m in medians.items() if name != ECHO_C and m.cpu_share < SATURATED]
        if starved:
            print(f"  note: {', '.join(starved)} used under {SATURATED:.0%} of a CPU: the load generator, or other work "
                  "on the machine, set the pace, so frames/s says little; compare frames/CPU-s, or run again")
        netkit = medians[NETKIT]
        for other in (NETKIT_PER_FRAME, ASYNCIO_PROTOCOL, ASYNCIO_STREAMS):
            rate_ratio = netkit.frames_per_s / medians[other].frames_per_s
            cpu_ratio = netkit.frames_per_cpu_second / medians[other].frames_per_cpu_second
            verdict = ""
            if load_index == 0 and other in (ASYNCIO_PROTOCOL, ASYNCIO_STREAMS):
                verdict = f"   target 1.5x: {'met' if rate_ratio >= 1.5 else 'MISSED'}"
            print(f"  netkit / {other}: {rate_ratio:.2f}x frames/s, {cpu_ratio:.2f}x frames/CPU-s{verdict}")
        c = medians[ECHO_C]
        print(f"  netkit / {ECHO_C}: {netkit.frames_per_s / c.frames_per_s:.2f} of its frames/s, "
              f"{netkit.frames_per_cpu_second / c.frames_per_cpu_second:.2f} of its frames/CPU-s")


SECTIONS: dict[str, Callable[[Options], None]] = {
    "decode": section_decode,
    "varint": section_varint,
    "lines": section_lines,
    "encode": section_encode,
    "adapter": section_adapter,
    "loopback": section_loopback,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sections", nargs="*", choices=[[], *SECTIONS], help="sections to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller inputs and fewer repeats")
    parser.add_argument("--rounds", type=int, default=3, help="loopback: rounds per server and load (default 3)")
    parser.add_argument("--seconds", type=float, default=3.0, help="loopback: measured seconds per run (default 3)")
    parser.add_argument("--loadgen", default=Options.loadgen, help=f"loadgen binary (default {Options.loadgen})")
    parser.add_argument("--echo-c", default=Options.echo_c, help=f"echo_c binary (default {Options.echo_c})")
    args = parser.parse_args(argv)
    options = Options(quick=args.quick, rounds=args.rounds, seconds=args.seconds,
                      loadgen=args.loadgen, echo_c=args.echo_c)
    print(f"Python {sys.version.split()[0]} on {sys.platform}, {os.cpu_count()} CPUs")
    for name in args.sections or SECTIONS:
        SECTIONS[name](options)


if __name__ == "__main__":
    main()
