"""netkit.redis against the same server with redis-benchmark, the C ceiling.

    python benchmarks/bench_redis.py            # 3 interleaved rounds (~1 min)
    python benchmarks/bench_redis.py --quick    # a short smoke run
    python benchmarks/bench_redis.py --rounds 5 --requests 50000

A private redis-server (no persistence, a free loopback port) serves both
clients.  The cases, each as redis-benchmark runs them (``-c 1``: one
connection; the same 3-byte value and fixed key as its default SET/GET):

* ``set`` / ``get``: one command, wait for its reply, the next one
  (``-P 1``): a round trip per command, latency-bound;
* ``set-pipelined``: batches of 100 SETs written at once (``-P 100``):
  throughput-bound, the parser's and encoder's cost per command.

netkit runs ``await r.execute(...)`` in a loop, and a ``pipeline()`` of
100 per ``execute()``.  With ``taskset`` the server runs on core 1 and the
clients on core 0.  Rounds are interleaved (every case of every client,
then again) so drift on a shared machine hits both alike; medians are
reported, with netkit's rate as a fraction of redis-benchmark's.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import netkit  # noqa: E402
import netkit.redis  # noqa: E402

KEY = "key:__rand_int__"  # redis-benchmark's key without -r
VALUE = "xxx"  # redis-benchmark's value: 3 bytes (-d 3)
PIPELINE = 100  # commands per batch in the pipelined case (redis-benchmark -P 100)
CASES = ["set", "get", "set-pipelined"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pinned(core: int, command: list[str]) -> list[str]:
    """``command`` run on one core when ``taskset`` is there."""
    return ["taskset", "-c", str(core), *command] if shutil.which("taskset") and os.cpu_count() and os.cpu_count() > 1 else command  # type: ignore[operator]


def start_server(directory: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    server = subprocess.Popen(
        pinned(1, ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    return server, port
        except OSError:
            time.sleep(0.01)
    server.kill()
    raise SystemExit("redis-server did not start")


def run_redis_benchmark(port: int, case: str, requests: int) -> float:
    """Requests per second that redis-benchmark reports for ``case``."""
    test = "get" if case == "get" else "set"
    pipeline = PIPELINE if case == "set-pipelined" else 1
    command = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", test, "-n", str(requests), "-c", "1", "-P", str(pipeline), "--csv"]
    output = subprocess.run(pinned(0, command), capture_output=True, text=True, check=True).stdout
    rows = list(csv.DictReader(io.StringIO(output)))
    return float(rows[0]["rps"])


def run_netkit(port: int, case: str, requests: int) -> float:
    """Commands per second of netkit.redis for ``case``, in this process (pinned to core 0)."""

    async def measure() -> float:
        async with netkit.redis.connect(f"redis://127.0.0.1:{port}/0") as r:
            await r.execute("SET", KEY, VALUE)
            for _ in range(1000):  # warm up: connection, caches, the interpreter's specializations
                await r.execute("GET", KEY)
            start = time.perf_counter()
            if case == "set":
                for _ in range(requests):
                    await r.execute("SET", KEY, VALUE)
            elif case == "get":
                for _ in range(requests):
                    await r.execute("GET", KEY)
            else:
                for _ in range(requests // PIPELINE):
                    pipe = r.pipeline()
                    for _ in range(PIPELINE):
                        pipe.add("SET", KEY, VALUE)
                    await pipe.execute()
            return requests / (time.perf_counter() - start)

    return netkit.run(measure())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one round of few requests")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=20000, help="per case and round (x10 for the pipelined case)")
    options = parser.parse_args()
    if shutil.which("redis-server") is None or shutil.which("redis-benchmark") is None:
        raise SystemExit("needs redis-server and redis-benchmark (Debian: apt-get install redis-server)")
    rounds, requests = (1, 2000) if options.quick else (options.rounds, options.requests)
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})
    results: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as directory:
        server, port = start_server(directory)
        try:
            for _ in range(rounds):
                for case in CASES:
                    count = requests * 10 if case == "set-pipelined" else requests
                    results.setdefault(("netkit", case), []).append(run_netkit(port, case, count))
                    results.setdefault(("redis-benchmark", case), []).append(run_redis_benchmark(port, case, count))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait()
    print(f"{'case':<16}{'netkit ops/s':>16}{'redis-benchmark ops/s':>24}{'netkit / C':>12}")
    for case in CASES:
        ours = statistics.median(results[("netkit", case)])
        ceiling = statistics.median(results[("redis-benchmark", case)])
        print(f"{case:<16}{ours:>16,.0f}{ceiling:>24,.0f}{ours / ceiling:>12.2f}")
    print(f"\n{rounds} round(s), medians; {requests} requests per round ({requests * 10} pipelined), one connection each")


if __name__ == "__main__":
    main()
