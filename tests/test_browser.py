"""The chat page in a real browser: headless Chromium, driven over the DevTools
protocol with netkit's own WebSocket client.

Two browser tabs, a Python WebSocket client and a terminal (framed TCP)
client join one room of an in-process chat server.  A message typed in one
tab shows up in the other and reaches both Python clients; messages from the
Python clients show up in both tabs.  Everything the browser does goes
through the page's own elements (``#nick``, ``#join``, ``#input``,
``#send``), the way a person would use it.

A second test joins a room whose history is taller than the message pane
and checks that the newest item is in view then, after a new message and
after the connection-lost notice.

Chromium is found on PATH (Debian's ``chromium`` package; ``.ci/run``
installs it); without it the test is skipped and says why, or fails in CI
(``CI=true``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services import service_missing

import netkit
from netkit import framing, websocket
from netkit.chat import ChatLimits, ChatServer

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")

# The flags Chromium needs here: headless, no sandbox (tests may run as
# root), no GPU, and none of the background traffic (updates, sync, QUIC
# probes) that a machine without outside network access would refuse.
BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
)

# Chromium starts in well under a second here; thirty covers a loaded CI machine.
BROWSER_START_TIMEOUT = 30.0
# Upper bound on the whole exchange, so a hang fails instead of stalling the run.
TEST_DEADLINE = 60.0
# How long one expected change in a page may take to show up.
PAGE_WAIT = 15.0
# How long a polite SIGTERM gets before SIGKILL.
BROWSER_EXIT_TIMEOUT = 10.0


# ------------------------------------------------------------------ Chromium


def find_browser() -> str | None:
    """The first Chromium or Chrome on PATH."""
    for name in BROWSER_NAMES:
        path = shutil.which(name)
        if path is not None:
            return path
    return None


def read_devtools_url(process: subprocess.Popen[bytes], log: Path) -> str:
    """Wait for Chromium's ``DevTools listening on ws://...`` line in ``log``."""
    deadline = time.monotonic() + BROWSER_START_TIMEOUT
    while True:
        text = log.read_text(encoding="utf-8", errors="replace")
        found = re.search(r"^DevTools listening on (ws://\S+)", text, flags=re.MULTILINE)
        if found:
            return found.group(1)
        if process.poll() is not None:
            pytest.fail(f"Chromium exited with status {process.returncode} before listening; it wrote:\n{text[-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"Chromium did not listen for DevTools within {BROWSER_START_TIMEOUT:g} s; it wrote:\n{text[-4000:]}")
        # The line comes from another process: polling its log is the only way to wait for it.
        time.sleep(0.05)


def stop_browser(process: subprocess.Popen[bytes]) -> None:
    """End Chromium and every process it started (they share its process group)."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            pass
        try:
            process.wait(BROWSER_EXIT_TIMEOUT)
            break
        except subprocess.TimeoutExpired:
            continue
    # Renderer and helper processes may outlive the browser process by a moment.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture
def devtools_url() -> Iterator[str]:
    """A headless Chromium with a fresh profile; yields its DevTools WebSocket URL."""
    browser = find_browser()
    if browser is None:
        service_missing(
            f"no Chromium or Chrome on PATH (looked for {', '.join(BROWSER_NAMES)}); "
            "install Debian's chromium package to run the browser test"
        )
    workdir = Path(tempfile.mkdtemp(prefix="netkit-browser-"))
    log_path = workdir / "chromium.log"
    process: subprocess.Popen[bytes] | None = None
    try:
        # stderr goes to a file, not a pipe: Chromium writes a lot there, and a
        # pipe nobody drains would block it.
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [browser, *BROWSER_FLAGS, f"--user-data-dir={workdir / 'profile'}", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,  # its own process group, so it can be ended as a whole
            )
        yield read_devtools_url(process, log_path)
    finally:
        if process is not None:
            stop_browser(process)
        shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------- the DevTools protocol


class DevToolsError(Exception):
    """A DevTools command failed."""


class DevTools:
    """A DevTools protocol client over one netkit WebSocket to the browser.

    Pages are driven through sessions on this same connection
    (``Target.attachToTarget`` with ``flatten``), so one reader task routes
    every answer to its command and keeps every event for whoever waits on it.
    """

    def __init__(self, connection: websocket.WebSocket) -> None:
        self.connection = connection
        self._next_id = 0
        self._answers: dict[int, netkit.Future[dict[str, Any]]] = {}
        self._events: deque[dict[str, Any]] = deque(maxlen=1000)
        self._event_arrived = netkit.Event()
        self._reader = netkit.create_task(self._read_forever())

    @classmethod
    async def connect(cls, url: str) -> DevTools:
        # Answers such as a page's snapshot can be large; 64 MiB is plenty.
        return cls(await websocket.connect(url, max_message_size=64 * 1024 * 1024))

    async def _read_forever(self) -> None:
        error: BaseException = DevToolsError("the DevTools connection closed")
        try:
            async for raw in self.connection:
                message = json.loads(raw)
                if "id" in message:
                    answer = self._answers.pop(message["id"], None)
                    if answer is not None and not answer.done():
                        answer.set_result(message)
                else:
                    self._events.append(message)
                    self._event_arrived.set()
        except Exception as exc:
            error = exc
        for answer in self._answers.values():
            if not answer.done():
                answer.set_exception(error)

    async def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Run one command (in a page's ``session``, or on the browser) and return its result."""
        self._next_id += 1
        command: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            command["sessionId"] = session
        answer: netkit.Future[dict[str, Any]] = netkit.get_running_loop().create_future()
        self._answers[self._next_id] = answer
        await self.connection.send(json.dumps(command))
        message = await answer
        if "error" in message:
            raise DevToolsError(f"{method} failed: {message['error']}")
        return message["result"]

    def events(self, method: str, session: str) -> list[dict[str, Any]]:
        """The events named ``method`` received so far for ``session`` (their params)."""
        return [e["params"] for e in self._events if e["method"] == method and e.get("sessionId") == session]

    async def wait_event(self, method: str, session: str) -> dict[str, Any]:
        """Wait for the first event named ``method`` in ``session`` not yet returned."""
        while True:
            for event in self._events:
                if event["method"] == method and event.get("sessionId") == session:
                    self._events.remove(event)
                    return event["params"]
            self._event_arrived.clear()
            await self._event_arrived.wait()

    async def open_page(self, url: str) -> Page:
        """A new tab showing ``url``, loaded."""
        target = await self.call("Target.createTarget", url="about:blank")
        attached = await self.call("Target.attachToTarget", targetId=target["targetId"], flatten=True)
        page = Page(self, attached["sessionId"])
        await self.call("Runtime.enable", page.session)  # reports uncaught exceptions
        await self.call("Log.enable", page.session)  # reports CSP violations, failed loads
        await self.call("Page.enable", page.session)
        navigated = await self.call("Page.navigate", page.session, url=url)
        if "errorText" in navigated:
            raise DevToolsError(f"could not load {url}: {navigated['errorText']}")
        await self.wait_event("Page.loadEventFired", page.session)
        return page

    async def close(self) -> None:
        await self.connection.close()
        await self._reader


# What a test wants to know about a page when something is missing from it.
SNAPSHOT_SCRIPT = """({
  status: document.getElementById("status").textContent,
  joinError: document.getElementById("join-error").textContent,
  chatShown: !document.getElementById("chat").hidden,
  messages: Array.from(document.querySelectorAll("#messages .msg[data-nick]"),
                       (item) => [item.dataset.nick, item.querySelector(".text").textContent]),
  notices: Array.from(document.querySelectorAll("#messages .notice, #messages .error"), (item) => item.textContent),
})"""

# Resolves to true as soon as CONDITION holds, checking it after every change
# to the document; to false after TIMEOUT_MS.  The page tells when it
# changes, so nothing polls.
WAIT_SCRIPT = """new Promise((resolve) => {
  const holds = () => { try { return Boolean(CONDITION); } catch (error) { return false; } };
  if (holds()) { resolve(true); return; }
  const observer = new MutationObserver(() => {
    if (holds()) { observer.disconnect(); clearTimeout(timer); resolve(true); }
  });
  observer.observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
  const timer = setTimeout(() => { observer.disconnect(); resolve(holds()); }, TIMEOUT_MS);
})"""


class Page:
    """One browser tab, used through the chat page's own elements."""

    def __init__(self, devtools: DevTools, session: str) -> None:
        self.devtools = devtools
        self.session = session

    async def evaluate(self, expression: str, *, await_promise: bool = False) -> Any:
        """The value of a JavaScript expression in the page."""
        result = await self.devtools.call(
            "Runtime.evaluate", self.session, expression=expression, returnByValue=True, awaitPromise=await_promise
        )
        if "exceptionDetails" in result:
            raise DevToolsError(f"{expression[:80]!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def snapshot(self) -> dict[str, Any]:
        """Status line, join error, the messages shown (nick, text) and the notices."""
        return await self.evaluate(SNAPSHOT_SCRIPT)  # type: ignore[no-any-return]

    async def wait_until(self, condition: str, what: str) -> None:
        """Wait until the JavaScript ``condition`` holds; fail saying what the page shows."""
        script = WAIT_SCRIPT.replace("CONDITION", condition).replace("TIMEOUT_MS", str(int(PAGE_WAIT * 1000)))
        if not await self.evaluate(script, await_promise=True):
            pytest.fail(f"{what}: not seen within {PAGE_WAIT:g} s; the page shows {await self.snapshot()}")

    async def join(self, nick: str) -> None:
        """Type a nickname, press Join, and wait until the chat is shown."""
        await self.evaluate(f'document.getElementById("nick").value = {json.dumps(nick)}; document.getElementById("join").click()')
        await self.wait_until(
            'document.getElementById("status").textContent === "connected" && !document.getElementById("chat").hidden',
            f"{nick} joined",
        )

    async def say(self, text: str) -> None:
        """Type a message and press Send."""
        await self.evaluate(f'document.getElementById("input").value = {json.dumps(text)}; document.getElementById("send").click()')

    async def wait_for_message(self, nick: str, text: str) -> None:
        """Wait until the page shows ``text`` from ``nick``."""
        condition = (
            f'Array.from(document.querySelectorAll("#messages .msg[data-nick]")).some((item) => '
            f"item.dataset.nick === {json.dumps(nick)} && "
            f'item.querySelector(".text").textContent === {json.dumps(text)})'
        )
        await self.wait_until(condition, f"message {text!r} from {nick}")

    def problems(self) -> list[Any]:
        """Uncaught exceptions and error-level log entries (a CSP violation, a failed load)."""
        exceptions = self.devtools.events("Runtime.exceptionThrown", self.session)
        errors = [e["entry"] for e in self.devtools.events("Log.entryAdded", self.session) if e["entry"]["level"] == "error"]
        return exceptions + errors


# -------------------------------------------------------- Python clients


async def next_chat_message(receive: Any) -> dict[str, Any]:
    """The next ``message`` a chat client receives, skipping joins, leaves and pings."""
    while True:
        message = await receive()
        assert message is not None, "the server closed the connection"
        if message["type"] == "message":
            return message  # type: ignore[no-any-return]


class TerminalClient:
    """A terminal client: JSON objects in length-prefixed frames over TCP."""

    def __init__(self, reader: netkit.StreamReader, writer: netkit.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.framer = framing.LengthPrefixFramer("!I", max_frame_size=1024 * 1024)

    @classmethod
    async def join(cls, address: tuple[str, int], nick: str) -> TerminalClient:
        client = cls(*await netkit.open_connection(*address))
        client.send({"type": "join", "nick": nick})
        welcome = await client.receive()
        assert welcome is not None and welcome["type"] == "welcome", welcome
        return client

    def send(self, message: dict[str, Any]) -> None:
        framing.write_frame(self.writer, self.framer, json.dumps(message).encode("utf-8"))

    async def receive(self) -> dict[str, Any] | None:
        frame = await framing.read_frame(self.reader, self.framer)
        return None if frame is None else json.loads(frame)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def join_websocket(address: tuple[str, int], nick: str) -> websocket.WebSocket:
    host, port = address
    connection = await websocket.connect(f"ws://{host}:{port}/ws")
    await connection.send(json.dumps({"type": "join", "nick": nick}))
    welcome = json.loads(await connection.recv())
    assert welcome["type"] == "welcome", welcome
    return connection


# --------------------------------------------------------------------- test


def test_browser_tabs_and_python_clients_chat_in_one_room(devtools_url: str) -> None:
    async def scenario() -> None:
        async with ChatServer("127.0.0.1", 0, 0) as server:
            assert server.url is not None and server.http_address is not None and server.tcp_address is not None
            devtools = await DevTools.connect(devtools_url)
            try:
                ann = await devtools.open_page(server.url)
                bob = await devtools.open_page(server.url)
                await ann.join("ann")
                await bob.join("bob")
                python = await join_websocket(server.http_address, "py")
                terminal = await TerminalClient.join(server.tcp_address, "term")

                async def python_receive() -> dict[str, Any]:
                    return json.loads(await python.recv())  # type: ignore[no-any-return]

                # Typed in one tab: the other tab, the Python WebSocket client
                # and the terminal client all get it.  The markup must stay text.
                from_browser = "hello from <b>Chromium</b> & friends"
                await ann.say(from_browser)
                await bob.wait_for_message("ann", from_browser)
                await ann.wait_for_message("ann", from_browser)
                for received in (await next_chat_message(python_receive), await next_chat_message(terminal.receive)):
                    assert (received["nick"], received["text"]) == ("ann", from_browser)

                # Sent by the Python clients: both tabs show them, in order.
                from_python = "hello from a Python WebSocket"
                await python.send(json.dumps({"type": "say", "text": from_python}))
                from_terminal = "hello from a terminal"
                terminal.send({"type": "say", "text": from_terminal})
                for page in (ann, bob):
                    await page.wait_for_message("py", from_python)
                    await page.wait_for_message("term", from_terminal)
                    shown = (await page.snapshot())["messages"]
                    # The two sends race, so the hub's order is whichever came first;
                    # each tab must show that one order.
                    assert sorted(map(tuple, shown)) == sorted(
                        [("ann", from_browser), ("py", from_python), ("term", from_terminal)]
                    ), shown
                ann_shown = (await ann.snapshot())["messages"]
                assert (await bob.snapshot())["messages"] == ann_shown
                for receive in (python_receive, terminal.receive):
                    seen = [await next_chat_message(receive) for _ in range(2)]
                    assert [[m["nick"], m["text"]] for m in seen] == ann_shown[1:]

                assert await bob.evaluate('document.querySelector("#messages b") === null'), "a message was parsed as HTML"
                assert ann.problems() == [] and bob.problems() == [], ann.problems() + bob.problems()
                await python.close()
                await terminal.close()
            finally:
                await devtools.close()

    netkit.run(netkit.wait_for(scenario(), TEST_DEADLINE))


# True when the message pane has more than it can show and its last item is
# fully in view: what a reader expects to see without scrolling.
NEWEST_IN_VIEW = """(() => {
  const list = document.getElementById("messages");
  const newest = list.lastElementChild;
  if (!newest || list.scrollHeight <= list.clientHeight) return false;
  const pane = list.getBoundingClientRect(), item = newest.getBoundingClientRect();
  return item.top >= pane.top - 1 && item.bottom <= pane.bottom + 1;
})()"""


def test_the_newest_item_is_in_view_after_joining_and_as_items_arrive(devtools_url: str) -> None:
    async def scenario() -> None:
        # One Python client fills the room's history quickly: no rate limit in the way.
        limits = ChatLimits(rate=1000, burst=1000, address_rate=1000, address_burst=1000)
        async with ChatServer("127.0.0.1", 0, 0, limits=limits) as server:
            assert server.url is not None and server.http_address is not None
            python = await join_websocket(server.http_address, "py")

            async def python_receive() -> dict[str, Any]:
                return json.loads(await python.recv())  # type: ignore[no-any-return]

            for number in range(limits.history_size):
                await python.send(json.dumps({"type": "say", "text": f"history {number}"}))
            for _ in range(limits.history_size):
                await next_chat_message(python_receive)
            devtools = await DevTools.connect(devtools_url)
            try:
                ann = await devtools.open_page(server.url)
                await ann.join("ann")  # the history is taller than the pane
                await ann.wait_until(NEWEST_IN_VIEW, "the newest item in view after joining")

                await python.send(json.dumps({"type": "say", "text": "a new message"}))
                await ann.wait_for_message("py", "a new message")
                await ann.wait_until(NEWEST_IN_VIEW, "the new message in view")

                await server.stop()
                lost = 'document.getElementById("messages").lastElementChild.textContent.startsWith("Connection lost")'
                await ann.wait_until(f"{lost} && {NEWEST_IN_VIEW}", "the connection-lost notice in view")
                assert ann.problems() == [], ann.problems()
            finally:
                await devtools.close()

    netkit.run(netkit.wait_for(scenario(), TEST_DEADLINE))


def test_a_refused_join_is_explained_on_the_join_form(devtools_url: str) -> None:
    async def scenario() -> None:
        async with ChatServer("127.0.0.1", 0, 0, limits=ChatLimits(max_clients_per_address=1)) as server:
            assert server.url is not None and server.http_address is not None
            python = await join_websocket(server.http_address, "py")  # the address's one connection
            devtools = await DevTools.connect(devtools_url)
            try:
                ann = await devtools.open_page(server.url)
                await ann.evaluate('document.getElementById("nick").value = "ann"; document.getElementById("join").click()')
                await ann.wait_until(
                    'document.getElementById("join-error").textContent.includes("connections from your address")'
                    ' && !document.getElementById("join-form").hidden && !document.getElementById("join").disabled',
                    "the refusal on the join form",
                )
                assert ann.problems() == [], ann.problems()
                await python.close()
            finally:
                await devtools.close()

    netkit.run(netkit.wait_for(scenario(), TEST_DEADLINE))
