"""Drive netkit's WebSocket client through the Autobahn|Testsuite's fuzzing server.

    autobahn client 9001            # in one terminal: the suite's test server
    python tools/ws_autobahn_client.py 9001

The suite's server tells how many cases it has (``/getCaseCount``); for each
case the client connects to ``/runCase?case=N&agent=netkit`` and echoes every
message until the server closes; ``/updateReports`` then makes the suite
grade the run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's root: its netkit, and examples/_common.py
import netkit  # noqa: E402
from netkit import websocket  # noqa: E402
from netkit._argtypes import os_error_reason  # noqa: E402
from examples._common import run_client  # noqa: E402

AGENT = "netkit"


async def echo_case(base: str, case: int) -> None:
    uri = f"{base}/runCase?case={case}&agent={AGENT}"
    # The suite sends messages of up to 16 MiB and judges conformance, not speed.
    try:
        async with websocket.connect(uri, max_message_size=None, ping_interval=None) as ws:
            async for message in ws:
                await ws.send(message)
    except netkit.ConnectionClosed:
        pass  # the case ended the connection, often on purpose


async def case_count(base: str) -> int:
    """How many cases the suite has: the first thing asked, so it also tells
    whether the suite's server is there at all."""
    async with websocket.connect(f"{base}/getCaseCount") as ws:
        return int(await ws.recv())


async def main(port: int, host: str, only: int | None) -> int:
    base = f"ws://{host}:{port}"
    try:
        count = await case_count(base)
    except (OSError, netkit.HandshakeError, netkit.ConnectionClosed, ValueError) as exc:
        reason = os_error_reason(exc) if isinstance(exc, OSError) else str(exc)
        print(f"cannot reach the test suite's server at {base}: {reason}", file=sys.stderr, flush=True)
        return 1
    cases = [only] if only is not None else range(1, count + 1)
    for case in cases:
        await echo_case(base, case)
        print(f"case {case}/{count} done", file=sys.stderr, flush=True)
    async with websocket.connect(f"{base}/updateReports?agent={AGENT}") as ws:
        try:
            await ws.recv()
        except netkit.ConnectionClosed:
            pass
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int, help="the port of the suite's fuzzing server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--case", type=int, help="run only this case number")
    args = parser.parse_args()
    sys.exit(run_client(main(args.port, args.host, args.case)))
