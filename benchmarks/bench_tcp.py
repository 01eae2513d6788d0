"""Echo servers under the same load: netkit against asyncio, with C as the ceiling.

    python benchmarks/bench_tcp.py            # every case, 3 interleaved rounds (~3 min)
    python benchmarks/bench_tcp.py --quick    # a short smoke run
    python benchmarks/bench_tcp.py --cases ping,udp --rounds 5

Each server runs in its own process pinned to one core (``taskset -c 1``) and
the C load generator (``loadgen``) on the other (``taskset -c 0``); rounds are
interleaved (round 1 of every server, then round 2, ...) so that drift on a
shared machine hits every server alike, and medians are reported.

The servers compared, on one core each:

* ``netkit-protocol`` / ``asyncio-protocol``: the *same* ``EchoProtocol`` class
  on each loop (a netkit protocol runs on asyncio unchanged);
* ``netkit-streams`` / ``asyncio-streams``: the same ``handle`` coroutine over
  each library's ``start_server`` (read, write, ``await drain()``);
* ``netkit-udp`` / ``asyncio-udp``: the same ``DatagramProtocol``;
* ``echo_c``: a single-threaded epoll server in C, the practical ceiling.

Besides throughput and latency, the server's CPU time over the measured
window (utime + stime from /proc/PID/stat) gives messages per CPU-second,
which holds up better than raw rates when the machine is shared.  The
``idle`` case holds 10,000 connections open and reports the server's memory
(VmRSS) growth per connection.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.environ.get("NETKIT_TOOLS", "/tmp/netkit-tools")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# ------------------------------------------------------------------ servers
# The server side of every comparison.  The classes below are written once
# and run on both loops: that is the point of sharing asyncio's interface.


def _protocol_classes(base: Any, datagram_base: Any) -> tuple[type, type]:
    class EchoProtocol(base):  # type: ignore[misc, valid-type]
        """Writes back whatever arrives."""

        def connection_made(self, transport: Any) -> None:
            self.write = transport.write

        def data_received(self, data: bytes) -> None:
            self.write(data)

    class UDPEcho(datagram_base):  # type: ignore[misc, valid-type]
        """Sends each datagram back to its sender."""

        def connection_made(self, transport: Any) -> None:
            self.sendto = transport.sendto

        def datagram_received(self, data: bytes, addr: Any) -> None:
            self.sendto(data, addr)

    return EchoProtocol, UDPEcho


async def handle(reader: Any, writer: Any) -> None:
    """The streams echo: the same code for netkit and asyncio streams."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _serve(lib: Any, kind: str, port: int) -> None:
    loop = lib.get_running_loop()
    echo, udp_echo = _protocol_classes(lib.Protocol, lib.DatagramProtocol)
    if kind == "protocol":
        server = await loop.create_server(echo, "127.0.0.1", port, backlog=4096)
        bound = server.sockets[0].getsockname()[1]
    elif kind == "streams":
        server = await lib.start_server(handle, "127.0.0.1", port, backlog=4096)
        bound = server.sockets[0].getsockname()[1]
    else:
        transport, _ = await loop.create_datagram_endpoint(udp_echo, local_addr=("127.0.0.1", port))
        bound = transport.get_extra_info("sockname")[1]
    print(f"listening on {bound}", flush=True)
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, lambda: stop.done() or stop.set_result(None))
    await stop


def serve(name: str, port: int) -> None:
    """Run one server (``netkit-protocol``, ``asyncio-udp``, ...) until SIGTERM."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # room for 10,000 connections
    library, kind = name.split("-")
    if library == "netkit":
        sys.path.insert(0, ROOT)
        import netkit

        netkit.run(_serve(netkit, kind, port))
    else:
        import asyncio

        asyncio.run(_serve(asyncio, kind, port))


# ------------------------------------------------------------------- driver


@dataclass
class Case:
    """One load shape: the loadgen arguments and the servers to put under it."""

    name: str
    title: str
    loadgen: list[str]
    servers: list[str]
    unit: str = "msg/s"  # or "MB/s"
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (netkit, asyncio) to compare


TCP_SERVERS = ["netkit-protocol", "asyncio-protocol", "netkit-streams", "asyncio-streams", "echo_c"]
TCP_PAIRS = [("netkit-protocol", "asyncio-protocol"), ("netkit-streams", "asyncio-streams")]

CASES = {
    "ping": Case("ping", "64-byte ping-pong x 50 connections", ["tcp", "-c", "50", "-s", "64", "-d", "1"], TCP_SERVERS, pairs=TCP_PAIRS),
    "pipelined": Case(
        "pipelined", "64-byte messages, 16 in flight x 50 connections", ["tcp", "-c", "50", "-s", "64", "-d", "16"], TCP_SERVERS, pairs=TCP_PAIRS
    ),
    "bulk": Case("bulk", "bulk 64 KiB messages, 16 in flight, 1 connection", ["bulk"], TCP_SERVERS, unit="MB/s", pairs=TCP_PAIRS),
    "udp": Case(
        "udp", "UDP 64-byte datagrams x 16 sockets", ["udp", "-c", "16", "-s", "64"], ["netkit-udp", "asyncio-udp", "echo_c-udp"],
        pairs=[("netkit-udp", "asyncio-udp")],
    ),
}


@dataclass
class Result:
    rate: float  # msgs/s, or MB/s for bulk
    p50_us: float
    p99_us: float
    cpu: float  # the server's CPU time over the measured window / wall time
    errors: int


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_kib(pid: int) -> int:
    """VmRSS of a process, in KiB."""
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def pinned(core: int, argv: list[str]) -> list[str]:
    taskset = shutil.which("taskset")
    return [taskset, "-c", str(core), *argv] if taskset and (os.cpu_count() or 1) > 1 else argv


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServerProcess:
    """A server under test, in its own process on core 1."""

    def __init__(self, name: str) -> None:
        self.name = name
        if name.startswith("echo_c"):
            mode = "udp" if name.endswith("udp") else "tcp"
            self.port = free_port(socket.SOCK_DGRAM if mode == "udp" else socket.SOCK_STREAM)
            argv = [os.path.join(TOOLS, "echo_c"), "--mode", mode, "--port", str(self.port), "--backlog", "4096"]
            self.process = subprocess.Popen(pinned(1, argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_raise_fd_limit)
            self._wait_for_port(mode)
        else:
            argv = [sys.executable, os.path.abspath(__file__), "--serve", name, "--port", "0"]
            self.process = subprocess.Popen(pinned(1, argv), stdout=subprocess.PIPE, text=True)
            assert self.process.stdout is not None
            line = self.process.stdout.readline()
            if not line.startswith("listening on "):
                raise RuntimeError(f"{name} did not start: {line!r}")
            self.port = int(line.split()[-1])

    def _wait_for_port(self, mode: str) -> None:
        # echo_c prints nothing: wait until its port is bound.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if mode == "tcp":
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return
                except OSError:
                    pass
            else:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                    try:
                        probe.bind(("127.0.0.1", self.port))
                    except OSError:
                        return  # taken: echo_c has it
            time.sleep(0.02)
        raise RuntimeError("echo_c did not start")

    @property
    def pid(self) -> int:
        # taskset execs the program: the pid is the server's own.
        return self.process.pid

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        if self.process.stderr is not None:
            self.process.stderr.close()


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_load(server: ServerProcess, case: Case, duration: float, warmup: float) -> Result:
    argv = [os.path.join(TOOLS, "loadgen"), *case.loadgen, "-p", str(server.port), "-t", str(duration), "-w", str(warmup)]
    started = time.monotonic()
    load = subprocess.Popen(pinned(0, argv), stdout=subprocess.PIPE, text=True)
    # Sample the server's CPU time at the start and the end of the measured
    # window (loadgen connects, warms up for `warmup` seconds, then measures).
    time.sleep(warmup + 0.1)
    cpu_start, wall_start = cpu_seconds(server.pid), time.monotonic()
    time.sleep(max(duration - 0.2, 0.1))
    cpu_end, wall_end = cpu_seconds(server.pid), time.monotonic()
    out, _ = load.communicate(timeout=duration + warmup + 30)
    summary = json.loads(out.strip().splitlines()[-1])
    if time.monotonic() - started > duration + warmup + 20:
        print(f"  (slow run: {server.name})", file=sys.stderr)
    rate = summary["MB_per_s"] if case.unit == "MB/s" else summary["msgs_per_s"]
    return Result(rate, summary["lat_p50_us"], summary["lat_p99_us"], (cpu_end - cpu_start) / (wall_end - wall_start), int(summary["errors"]))


def run_idle(server: ServerProcess, connections: int, hold: float) -> tuple[float, int, int]:
    """Hold ``connections`` open (each echoes one probe); return (KiB per connection, ok, errors)."""
    before = rss_kib(server.pid)
    argv = [os.path.join(TOOLS, "loadgen"), "tcp", "-p", str(server.port), "-c", str(connections), "-s", "64",
            "--rounds", "1", "--hold", str(hold), "--connect-timeout", "60"]
    load = subprocess.Popen(pinned(0, argv), stdout=subprocess.PIPE, text=True, preexec_fn=_raise_fd_limit)
    assert load.stdout is not None
    during = before
    summary: dict[str, Any] = {}
    for line in load.stdout:
        record = json.loads(line)
        if record.get("event") == "round_done":
            time.sleep(min(hold / 2, 0.5))  # let the server settle, then sample mid-hold
            during = rss_kib(server.pid)
        elif "event" not in record:
            summary = record
    load.wait()
    ok = int(summary.get("connections_ok", 0))
    return ((during - before) / ok if ok else float("nan")), ok, int(summary.get("errors", 0))


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run: 1 round of 1 s, 1,000 idle connections")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per server (default 3)")
    parser.add_argument("--duration", type=float, help="measured seconds per run (default 2)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per run (default 0.5)")
    parser.add_argument("--cases", default="ping,pipelined,bulk,udp,idle", help="comma-separated: " + ",".join([*CASES, "idle"]))
    parser.add_argument("--servers", help="only these servers (comma-separated names)")
    parser.add_argument("--idle-connections", type=int, help="connections held open in the idle case (default 10000)")
    parser.add_argument("--json", help="also write every measurement to this file")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return 0

    rounds = args.rounds or (1 if args.quick else 3)
    duration = args.duration or (1.0 if args.quick else 2.0)
    warmup = args.warmup if args.warmup is not None else (0.3 if args.quick else 0.5)
    idle_connections = args.idle_connections or (1000 if args.quick else 10_000)
    wanted = [name.strip() for name in args.cases.split(",") if name.strip()]
    only = set(args.servers.split(",")) if args.servers else None
    for tool in ("loadgen", "echo_c"):
        if not os.access(os.path.join(TOOLS, tool), os.X_OK):
            print(f"{TOOLS}/{tool} is missing: build it with `make -C ../shared/tools`", file=sys.stderr)
            return 2
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, server on core 1, loadgen on core 0"
          f"{'' if shutil.which('taskset') else ' (taskset missing: not pinned)'}; "
          f"{rounds} round(s) x {duration:g} s (+{warmup:g} s warm-up), medians", flush=True)

    record: dict[str, Any] = {"rounds": rounds, "duration": duration, "warmup": warmup, "cases": {}}
    for case_name in wanted:
        if case_name == "idle":
            continue
        case = CASES[case_name]
        servers = [s for s in case.servers if only is None or s in only]
        results: dict[str, list[Result]] = {name: [] for name in servers}
        for _ in range(rounds):
            for name in servers:
                server = ServerProcess(name)
                try:
                    results[name].append(run_load(server, case, duration, warmup))
                finally:
                    server.stop()
        report(case, results)
        record["cases"][case_name] = {name: [r.__dict__ for r in runs] for name, runs in results.items()}

    if "idle" in wanted:
        print(f"\n{idle_connections:,} idle connections (each echoed one probe): server memory growth", flush=True)
        idle: dict[str, Any] = {}
        for name in ["netkit-protocol", "asyncio-protocol", "netkit-streams", "asyncio-streams"]:
            if only is not None and name not in only:
                continue
            server = ServerProcess(name)
            try:
                per_connection, ok, errors = run_idle(server, idle_connections, hold=2.0 if not args.quick else 1.0)
            finally:
                server.stop()
            idle[name] = {"kib_per_connection": per_connection, "connections": ok, "errors": errors}
            print(f"  {name:<18} {per_connection:6.2f} KiB per connection  ({ok:,} connected, {errors} errors)", flush=True)
        record["cases"]["idle"] = idle

    if args.json:
        with open(args.json, "w") as file:
            json.dump(record, file, indent=1)
    return 0


def report(case: Case, results: dict[str, list[Result]]) -> None:
    ceiling_runs = results.get("echo_c") or results.get("echo_c-udp") or []
    ceiling = median([r.rate for r in ceiling_runs])
    print(f"\n{case.title}  [loadgen {' '.join(case.loadgen)}]", flush=True)
    print(f"  {'server':<18} {case.unit:>11} {'rounds':>26} {'p50 us':>8} {'p99 us':>8} {'CPU':>5} {'per CPU-s':>10} {'of C':>6}")
    per_cpu: dict[str, float] = {}
    for name, runs in results.items():
        rate = median([r.rate for r in runs])
        cpu = median([r.cpu for r in runs])
        per_cpu[name] = median([r.rate / r.cpu for r in runs if r.cpu > 0])
        spread = " ".join(f"{r.rate:,.0f}" for r in runs)
        errors = sum(r.errors for r in runs)
        share = f"{rate / ceiling:6.0%}" if ceiling == ceiling and ceiling else "     -"
        print(
            f"  {name:<18} {rate:11,.0f} {spread:>26} {median([r.p50_us for r in runs]):8.0f} "
            f"{median([r.p99_us for r in runs]):8.0f} {cpu:5.0%} {per_cpu[name]:10,.0f} {share}"
            + (f"  ({errors} errors)" if errors else ""),
            flush=True,
        )
    for ours, theirs in case.pairs:
        if ours in results and theirs in results and results[ours] and results[theirs]:
            ratio = median([r.rate for r in results[ours]]) / median([r.rate for r in results[theirs]])
            cpu_ratio = per_cpu[ours] / per_cpu[theirs] if per_cpu[theirs] else float("nan")
            print(f"  {ours} / {theirs}: {ratio:.2f}x throughput, {cpu_ratio:.2f}x per CPU-second", flush=True)


if __name__ == "__main__":
    sys.exit(main())
