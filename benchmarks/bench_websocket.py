"""WebSocket echo servers under load: netkit's callback and async APIs, the
same sans-I/O core on asyncio, and the C ceiling.

    python benchmarks/bench_websocket.py                       # throughput and memory, 3 rounds
    python benchmarks/bench_websocket.py --rounds 5 --duration 3
    python benchmarks/bench_websocket.py --sections throughput --workloads ping-pong --rounds 5
    python benchmarks/bench_websocket.py --reference-python /tmp/venv/bin/python
    python benchmarks/bench_websocket.py --serve netkit-callback --port 9000

Servers (each a subprocess of this script, ``--serve NAME``):

* ``netkit-callback``: a ``WebSocketHandler`` that sends every message back;
* ``netkit-async``: ``async for message in ws: await ws.send(message)``;
* ``asyncio-protocol``: netkit's sans-I/O ``ServerHandshake`` and
  ``Connection`` driven from an ``asyncio.Protocol`` (the shell's job done
  on asyncio's loop, with the same frames);
* ``asyncio-streams``: the same core over asyncio streams (``reader.read`` into
  ``receive_data``, ``writer.writelines`` and ``drain``);
* ``websockets``, ``aiohttp``: the libraries themselves, when
  ``--reference-python`` names an interpreter that has them (a throwaway
  virtualenv: they are not netkit dependencies);
* ``echo_c``: the single-threaded C echo server of the project's tools, the
  practical ceiling of one core on this machine.

Every server runs without compression and without keepalive pings, with a
1 MiB message limit.

Load: ``/tmp/netkit-tools/loadgen ws`` (``--tools`` to change), 50
connections, 64-byte messages one at a time per connection (ping-pong) and
16 in flight (pipelined), then 64 KiB messages.  Where ``taskset`` exists and
the machine has two cores or more, servers run on core 1 and the load on
core 0.  Rounds are interleaved (every server once per round, in a rotating
order) and the medians are reported, since the machine may be shared.

For each run the script also reads the server's CPU time (utime + stime
from ``/proc/PID/stat``) over the measured interval: messages per
CPU-second is the figure least disturbed by other work on the machine.
``user us/msg`` is the user-space part alone, per message: what the
server's own code costs, without the system calls and the TCP stack, which
cost every server about the same (the C server's figure is near zero).

``memory``: 10,000 connections held idle after one message each (loadgen's
capacity mode); the growth of the server's RSS per connection.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_MESSAGE = 1 << 20
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ============================================================== the servers
#
# Each prints "ready PORT" once listening and runs until SIGTERM.


def raise_fd_limit() -> None:
    """Allow as many sockets as the hard limit (10,000 idle connections need it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def announce(port: int) -> None:
    print(f"ready {port}", flush=True)


def serve_netkit(port: int, api: str) -> None:
    sys.path.insert(0, ROOT)
    import netkit
    from netkit import websocket

    class Echo(websocket.WebSocketHandler):
        def on_message(self, ws: websocket.WebSocketProtocol, message: str | bytes) -> None:
            ws.send(message)

        def on_pause_writing(self, ws: websocket.WebSocketProtocol) -> None:
            ws.transport.pause_reading()

        def on_resume_writing(self, ws: websocket.WebSocketProtocol) -> None:
            ws.transport.resume_reading()

    async def echo(ws: websocket.WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    async def main() -> None:
        handler: Any = Echo() if api == "callback" else echo
        server = await websocket.serve(handler, "127.0.0.1", port, ping_interval=None, max_message_size=MAX_MESSAGE)
        stop = netkit.Event()
        netkit.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        announce(server.sockets[0].getsockname()[1])
        await stop.wait()
        server.close()
        await server.wait_closed()

    netkit.run(main())


def serve_asyncio_protocol(port: int) -> None:
    import asyncio

    sys.path.insert(0, ROOT)
    from netkit.http import RequestParser
    from netkit.websocket import BinaryMessage, Connection, Role, ServerHandshake, TextMessage

    handshake = ServerHandshake()

    class SansIOEcho(asyncio.Protocol):
        """The shell's work on asyncio: HTTP head, then frames through the core."""

        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.parser: RequestParser | None = RequestParser()
            self.conn: Connection | None = None

        def data_received(self, data: bytes) -> None:
            conn = self.conn
            if conn is None:
                assert self.parser is not None
                parsed = self.parser.feed(data)
                if parsed is None:
                    return
                request, data = parsed
                outcome = handshake.respond(request)
                self.transport.write(outcome.to_bytes())
                if not outcome.accepted:
                    self.transport.close()
                    return
                self.parser = None
                conn = self.conn = Connection(Role.SERVER, max_message_size=MAX_MESSAGE)
                if not data:
                    return
            for event in conn.receive_data(data):
                kind = type(event)
                if kind is BinaryMessage:
                    conn.send_binary(event.data)
                elif kind is TextMessage:
                    conn.send_text(event.data)
            out = conn.data_to_send()
            if out:
                self.transport.writelines(out)
            if conn.should_close_transport:
                self.transport.close()

        def eof_received(self) -> bool:
            if self.conn is not None:
                self.conn.receive_eof()
            return False

        def pause_writing(self) -> None:
            self.transport.pause_reading()

        def resume_writing(self) -> None:
            self.transport.resume_reading()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(SansIOEcho, "127.0.0.1", port)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        announce(server.sockets[0].getsockname()[1])
        await stop.wait()
        server.close()

    asyncio.run(main())


def serve_asyncio_streams(port: int) -> None:
    import asyncio

    sys.path.insert(0, ROOT)
    from netkit.http import RequestParser
    from netkit.websocket import BinaryMessage, Connection, Role, ServerHandshake, TextMessage

    handshake = ServerHandshake()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await echo(reader, writer)
        except ConnectionError:
            pass  # the load generator resets its connections at the end
        finally:
            writer.close()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = RequestParser()
        parsed = None
        while parsed is None:
            data = await reader.read(65536)
            if not data:
                return
            parsed = parser.feed(data)
        request, data = parsed
        outcome = handshake.respond(request)
        writer.write(outcome.to_bytes())
        if not outcome.accepted:
            return
        conn = Connection(Role.SERVER, max_message_size=MAX_MESSAGE)
        while True:
            if data:
                for event in conn.receive_data(data):
                    kind = type(event)
                    if kind is BinaryMessage:
                        conn.send_binary(event.data)
                    elif kind is TextMessage:
                        conn.send_text(event.data)
                out = conn.data_to_send()
                if out:
                    writer.writelines(out)
                    await writer.drain()
                if conn.should_close_transport:
                    break
            data = await reader.read(65536)
            if not data:
                conn.receive_eof()
                break

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await asyncio.start_server(client, "127.0.0.1", port)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        announce(server.sockets[0].getsockname()[1])
        await stop.wait()
        server.close()

    asyncio.run(main())


def serve_websockets(port: int) -> None:
    import asyncio

    from websockets.asyncio.server import serve

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    # The load generator resets its connections at the end of a run, which
    # websockets logs with a traceback per connection.
    logging.getLogger("websockets").setLevel(logging.CRITICAL)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        # The websockets FAQ's fair settings: no compression, no keepalive.
        async with serve(echo, "127.0.0.1", port, compression=None, ping_interval=None, max_size=MAX_MESSAGE) as server:
            stop = asyncio.Event()
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            announce(next(iter(server.sockets)).getsockname()[1])
            await stop.wait()

    asyncio.run(main())


def serve_aiohttp(port: int) -> None:
    import asyncio

    from aiohttp import WSMsgType, web

    async def echo(request: Any) -> Any:
        ws = web.WebSocketResponse(compress=False, max_msg_size=MAX_MESSAGE)
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.BINARY:
                await ws.send_bytes(message.data)
            elif message.type == WSMsgType.TEXT:
                await ws.send_str(message.data)
        return ws

    # As for websockets: no log line per connection reset by the load generator.
    logging.getLogger("aiohttp").setLevel(logging.CRITICAL)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        app = web.Application()
        app.router.add_get("/", echo)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        announce(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await stop.wait()
        await runner.cleanup()

    asyncio.run(main())


SERVE: dict[str, Callable[[int], None]] = {
    "netkit-callback": lambda port: serve_netkit(port, "callback"),
    "netkit-async": lambda port: serve_netkit(port, "async"),
    "asyncio-protocol": serve_asyncio_protocol,
    "asyncio-streams": serve_asyncio_streams,
    "websockets": serve_websockets,
    "aiohttp": serve_aiohttp,
}
REFERENCE = ("websockets", "aiohttp")  # run with --reference-python
C_SERVER = "echo_c"


# ============================================================= measuring


@dataclass
class Server:
    """A running server subprocess."""

    name: str
    process: subprocess.Popen[str]
    port: int

    def cpu_seconds(self) -> tuple[float, float]:
        """The server's CPU time so far: in its own code (user) and in the kernel (system)."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS  # utime, stime

    def rss_kib(self) -> int:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def pinned(core: int, command: list[str], pin: bool) -> list[str]:
    return ["taskset", "-c", str(core), *command] if pin else command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(name: str, options: argparse.Namespace) -> Server:
    if name == C_SERVER:
        port = free_port()
        command = [os.path.join(options.tools, "echo_c"), "--mode", "ws", "--port", str(port)]
        process = subprocess.Popen(pinned(1, command, options.pin), stdout=subprocess.DEVNULL, text=True)
        deadline = time.monotonic() + 5
        while True:  # echo_c prints nothing: wait until it accepts
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        return Server(name, process, port)
    python = options.reference_python if name in REFERENCE else sys.executable
    command = [python, os.path.abspath(__file__), "--serve", name, "--port", "0"]
    process = subprocess.Popen(pinned(1, command, options.pin), stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("ready "):
        process.kill()
        raise RuntimeError(f"{name} did not start: {line!r}")
    return Server(name, process, int(line.split()[1]))


@dataclass
class Workload:
    name: str
    label: str
    args: list[str]
    size: int


@dataclass
class Sample:
    msgs_per_s: float
    mb_per_s: float
    cpu_s: float
    user_s: float
    msgs: int
    errors: int

    @property
    def msgs_per_cpu_s(self) -> float:
        return self.msgs / self.cpu_s if self.cpu_s > 0 else float("nan")

    @property
    def user_us_per_msg(self) -> float:
        """The server's own (user-space) CPU time per message: the library's cost
        without the kernel's, which is the same for every server."""
        return self.user_s / self.msgs * 1e6 if self.msgs else float("nan")


def run_load(server: Server, workload: Workload, options: argparse.Namespace) -> Sample:
    """One loadgen run, with the server's CPU time over its measured interval."""
    command = [
        os.path.join(options.tools, "loadgen"), "ws", "-p", str(server.port),
        *workload.args, "-t", str(options.duration), "-w", str(options.warmup),
    ]  # fmt: skip
    cpu_trace: list[tuple[float, float, float]] = []
    done = threading.Event()

    def sample_cpu() -> None:
        while not done.is_set():
            cpu_trace.append((time.monotonic(), *server.cpu_seconds()))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample_cpu, daemon=True)
    started = time.monotonic()
    sampler.start()
    result = subprocess.run(pinned(0, command, options.pin), capture_output=True, text=True, timeout=120)
    done.set()
    sampler.join()
    if result.returncode != 0:
        raise RuntimeError(f"loadgen failed against {server.name}: {result.stderr or result.stdout}")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    measured_from = started + report["connect_time_s"] + report["warmup_s"]
    measured_to = measured_from + report["duration_s"]
    user = cpu_at(cpu_trace, measured_to, 1) - cpu_at(cpu_trace, measured_from, 1)
    system = cpu_at(cpu_trace, measured_to, 2) - cpu_at(cpu_trace, measured_from, 2)
    errors = report["errors"] + report["mismatches"] + report["proto_errors"] + report["disconnects"]
    return Sample(report["msgs_per_s"], report["MB_per_s"], user + system, user, report["msgs"], errors)


def cpu_at(trace: list[tuple[float, float, float]], moment: float, field: int) -> float:
    """The server's CPU time (``field`` 1: user, 2: system) at ``moment``,
    interpolated between samples."""
    before = max((point for point in trace if point[0] <= moment), default=trace[0])
    after = min((point for point in trace if point[0] >= moment), default=trace[-1])
    if after[0] == before[0]:
        return before[field]
    share = (moment - before[0]) / (after[0] - before[0])
    return before[field] + share * (after[field] - before[field])


# ============================================================== sections


WORKLOADS = [
    Workload("ping-pong", "64 B ping-pong (50 conns, 1 in flight)", ["-c", "50", "-s", "64", "-d", "1"], 64),
    Workload("pipelined", "64 B pipelined (50 conns, 16 in flight)", ["-c", "50", "-s", "64", "-d", "16"], 64),
    Workload("64k", "64 KiB (50 conns, 1 in flight)", ["-c", "50", "-s", "65536", "-d", "1"], 65536),
]


def throughput(names: list[str], options: argparse.Namespace) -> None:
    workloads = [workload for workload in WORKLOADS if workload.name in options.workloads]
    samples: dict[tuple[str, str], list[Sample]] = {}
    servers = {name: start_server(name, options) for name in names}
    try:
        for round_number in range(options.rounds):
            order = names[round_number % len(names):] + names[: round_number % len(names)]
            for workload in workloads:
                for name in order:
                    sample = run_load(servers[name], workload, options)
                    samples.setdefault((workload.label, name), []).append(sample)
                    print(
                        f"  round {round_number + 1} {workload.label:<40} {name:<17}"
                        f" {sample.msgs_per_s:>10,.0f} msg/s {sample.msgs_per_cpu_s:>10,.0f} msg/CPU-s",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        for server in servers.values():
            server.stop()
    for workload in workloads:
        report_workload(workload, names, samples)


def median_of(samples: list[Sample], attribute: str) -> float:
    return statistics.median(getattr(sample, attribute) for sample in samples)


def report_workload(workload: Workload, names: list[str], samples: dict[tuple[str, str], list[Sample]]) -> None:
    print(f"\n{workload.label}: medians of {len(samples[workload.label, names[0]])} rounds")
    print(
        f"{'server':<17} {'msg/s':>10} {'MB/s':>8} {'CPU s':>6} {'msg/CPU-s':>10} {'user us/msg':>11}"
        f" {'of echo_c':>9} {'errors':>6}"
    )
    rate = {name: median_of(samples[workload.label, name], "msgs_per_s") for name in names}
    per_cpu = {name: median_of(samples[workload.label, name], "msgs_per_cpu_s") for name in names}
    for name in names:
        runs = samples[workload.label, name]
        ceiling = f"{rate[name] / rate[C_SERVER]:>9.0%}" if C_SERVER in rate else f"{'-':>9}"
        print(
            f"{name:<17} {rate[name]:>10,.0f} {median_of(runs, 'mb_per_s'):>8,.1f} {median_of(runs, 'cpu_s'):>6.2f}"
            f" {per_cpu[name]:>10,.0f} {median_of(runs, 'user_us_per_msg'):>11.2f}"
            f" {ceiling} {sum(run.errors for run in runs):>6}"
        )
    ratios = [
        ("callback / async", "netkit-callback", "netkit-async"),
        ("async / asyncio-streams", "netkit-async", "asyncio-streams"),
        ("async / asyncio-protocol", "netkit-async", "asyncio-protocol"),
        ("callback / asyncio-protocol", "netkit-callback", "asyncio-protocol"),
        ("callback / websockets", "netkit-callback", "websockets"),
        ("async / websockets", "netkit-async", "websockets"),
        ("callback / aiohttp", "netkit-callback", "aiohttp"),
    ]
    for label, top, bottom in ratios:
        if top in rate and bottom in rate and rate[bottom] and per_cpu[bottom]:
            print(f"  {label:<28} {rate[top] / rate[bottom]:>5.2f}x msg/s   {per_cpu[top] / per_cpu[bottom]:>5.2f}x msg/CPU-s")


def memory(names: list[str], options: argparse.Namespace) -> None:
    connections = options.idle_connections
    print(f"\n{connections:,} idle connections (one 64-byte message each, then held)")
    print(f"{'server':<17} {'RSS before':>11} {'RSS held':>10} {'per connection':>15}")
    for name in names:
        server = start_server(name, options)
        try:
            before = server.rss_kib()
            command = [
                os.path.join(options.tools, "loadgen"), "ws", "-p", str(server.port), "-c", str(connections),
                "-s", "64", "--rounds", "1", "--hold", "3",
            ]  # fmt: skip
            peak = before
            loadgen = subprocess.Popen(pinned(0, command, options.pin), stdout=subprocess.PIPE, text=True)
            while loadgen.poll() is None:
                peak = max(peak, server.rss_kib())
                time.sleep(0.1)
            assert loadgen.stdout is not None
            report = json.loads(loadgen.stdout.read().strip().splitlines()[-1])
            held = report["connections_ok"]
            per = (peak - before) / held if held else float("nan")
            note = "" if held == connections else f"  (only {held} connected)"
            print(f"{name:<17} {before / 1024:>8.1f} MiB {peak / 1024:>6.1f} MiB {per:>11.1f} KiB{note}")
        finally:
            server.stop()


# ================================================================== main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", choices=sorted(SERVE), help="run one server (prints 'ready PORT')")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--sections", nargs="*", choices=["throughput", "memory"], default=["throughput", "memory"])
    parser.add_argument("--servers", nargs="*", help="which servers (default: all available)")
    parser.add_argument(
        "--workloads", nargs="*", choices=[w.name for w in WORKLOADS], default=[w.name for w in WORKLOADS]
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--idle-connections", type=int, default=10_000)
    parser.add_argument("--tools", default="/tmp/netkit-tools", help="where loadgen and echo_c are")
    parser.add_argument("--reference-python", help="an interpreter with websockets and aiohttp installed")
    options = parser.parse_args()
    raise_fd_limit()
    if options.serve:
        SERVE[options.serve](options.port)
        return

    options.pin = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    names = ["netkit-callback", "netkit-async", "asyncio-protocol", "asyncio-streams"]
    if options.reference_python:
        names += list(REFERENCE)
    if os.path.exists(os.path.join(options.tools, "echo_c")):
        names.append(C_SERVER)
    if options.servers:
        names = [name for name in names if name in options.servers]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, pinned: {options.pin}, "
          f"{options.rounds} rounds of {options.duration:g} s")  # fmt: skip
    if "throughput" in options.sections:
        throughput(names, options)
    if "memory" in options.sections:
        memory([name for name in names if name != C_SERVER] + ([C_SERVER] if C_SERVER in names else []), options)


if __name__ == "__main__":
    main()
