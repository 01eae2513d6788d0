"""Opening sockets: the coroutines behind ``EventLoop.create_server``,
``create_connection``, their Unix variants and ``create_datagram_endpoint``.

Name resolution runs ``getaddrinfo`` on the loop's executor (it blocks), except
for numeric addresses, which are resolved in place.  Connecting is
non-blocking: ``connect()`` returns ``EINPROGRESS`` and the loop waits for the
socket to become writable.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..futures import Future
from ..protocols import DatagramProtocol, Protocol
from .datagram import DatagramTransport
from .server import Server
from .stream import StreamTransport

if TYPE_CHECKING:
    from ..loop import EventLoop

__all__ = [
    "create_server",
    "create_connection",
    "create_unix_server",
    "create_unix_connection",
    "create_datagram_endpoint",
]

# The listen backlog, as asyncio: the kernel caps it at net.core.somaxconn anyway.
DEFAULT_BACKLOG = 100

AddrInfo = tuple[int, int, int, str, Any]


# ------------------------------------------------------------- resolution


def _numeric_addrinfo(host: str | None, port: Any, family: int, type_: int, proto: int) -> list[AddrInfo] | None:
    """Resolve a literal IP address without a system call; ``None`` when ``host`` is a name."""
    if host is None:
        return None
    if isinstance(port, str):
        if not port.isdigit():
            return None  # a service name such as "http"
        port = int(port)
    port = port or 0
    if "%" in host:  # scoped IPv6 literals need getaddrinfo's scope-id handling
        return None
    for fam in (socket.AF_INET, socket.AF_INET6):
        if family not in (socket.AF_UNSPEC, fam):
            continue
        try:
            socket.inet_pton(fam, host)
        except (OSError, ValueError):
            continue
        proto = proto or (socket.IPPROTO_TCP if type_ == socket.SOCK_STREAM else socket.IPPROTO_UDP)
        addr: Any = (host, port) if fam == socket.AF_INET else (host, port, 0, 0)
        return [(fam, type_, proto, "", addr)]
    return None


async def _resolve(
    loop: EventLoop, host: str | None, port: Any, *, family: int = 0, type_: int, proto: int = 0, flags: int = 0
) -> list[AddrInfo]:
    infos = _numeric_addrinfo(host, port, family, type_, proto)
    if infos is not None:
        return infos
    infos = await loop.run_in_executor(None, socket.getaddrinfo, host, port, family, type_, proto, flags)
    if not infos:
        raise OSError(f"getaddrinfo({host!r}, {port!r}) returned no addresses")
    return infos


# --------------------------------------------------------------- connecting


# A Unix listener with a full accept queue refuses a non-blocking connect with
# EAGAIN (where a blocking connect would sleep until there is room); netkit
# tries again after this delay, doubling up to the maximum.
_UNIX_RETRY_DELAY = 0.001
_UNIX_RETRY_MAX_DELAY = 0.1


async def _sock_connect(loop: EventLoop, sock: socket.socket, address: Any) -> None:
    """Connect a non-blocking socket, waiting on the loop for the handshake to finish."""
    delay = _UNIX_RETRY_DELAY
    while True:
        try:
            sock.connect(address)
            return
        except InterruptedError:
            break  # the connection goes on in the background
        except BlockingIOError as exc:
            if exc.errno != errno.EAGAIN or sock.family != socket.AF_UNIX:
                break  # EINPROGRESS: the handshake goes on in the background
        # EAGAIN on a Unix socket: nothing goes on in the background (waiting
        # for writability would "succeed" with an unconnected socket).  Retry.
        from ..tasks import sleep

        await sleep(delay)
        delay = min(delay * 2, _UNIX_RETRY_MAX_DELAY)
    future: Future[None] = loop.create_future()
    fd = sock.fileno()

    def on_writable() -> None:
        if not future.done():
            future.set_result(None)

    loop.add_writer(fd, on_writable)
    try:
        await future
    finally:
        loop.remove_writer(fd)
    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if error:
        raise OSError(error, os.strerror(error))


async def _connect_one(loop: EventLoop, info: AddrInfo, local_addr: Any) -> socket.socket:
    family, type_, proto, _, address = info
    sock = socket.socket(family, type_, proto)
    try:
        sock.setblocking(False)
        if local_addr is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(local_addr)
        await _sock_connect(loop, sock, address)
        return sock
    except OSError as exc:
        sock.close()
        # Name the address: with several addresses tried, the error must say which failed.
        raise OSError(exc.errno, f"connect to {address!r} failed: {exc.strerror or exc}") from None
    except BaseException:
        sock.close()
        raise


def _combined_error(errors: list[OSError]) -> OSError:
    """One error naming every address tried; its type is theirs when they agree
    (so a refused connection is still a ``ConnectionRefusedError``)."""
    if len(errors) == 1:
        return errors[0]
    kinds = {type(e) for e in errors}
    errnos = {e.errno for e in errors}
    message = "all connection attempts failed: " + "; ".join(str(e) for e in errors)
    if len(kinds) == 1 and len(errnos) == 1:
        return next(iter(kinds))(next(iter(errnos)), message)
    return OSError(message)


async def _happy_eyeballs(loop: EventLoop, infos: list[AddrInfo], local_addr: Any, delay: float) -> socket.socket:
    """RFC 8305 in short: start the next attempt every ``delay`` seconds, or as
    soon as one fails, until one connects; the first to connect wins."""
    from ..sync import Event
    from ..tasks import wait_for

    errors: list[OSError] = []
    winner: Future[socket.socket] = loop.create_future()
    finished = Event()  # set whenever an attempt ends, won or lost

    async def attempt(info: AddrInfo) -> None:
        try:
            sock = await _connect_one(loop, info, local_addr)
        except OSError as exc:
            errors.append(exc)
        else:
            if winner.done():
                sock.close()  # a later attempt lost the race
            else:
                winner.set_result(sock)
        finally:
            finished.set()

    tasks = []
    try:
        for info in infos:
            finished.clear()
            tasks.append(loop.create_task(attempt(info)))
            try:
                await wait_for(finished.wait(), delay)
            except TimeoutError:
                pass
            if winner.done():
                return winner.result()
        while not winner.done() and not all(task.done() for task in tasks):
            finished.clear()
            await finished.wait()
        if winner.done():
            return winner.result()
        raise _combined_error(errors)
    finally:
        for task in tasks:
            task.cancel()


async def create_connection(
    loop: EventLoop,
    protocol_factory: Callable[[], Protocol],
    host: str | None = None,
    port: int | str | None = None,
    *,
    family: int = 0,
    proto: int = 0,
    flags: int = 0,
    sock: socket.socket | None = None,
    local_addr: Any = None,
    happy_eyeballs_delay: float | None = None,
) -> tuple[StreamTransport, Protocol]:
    """Connect to ``host``:``port`` (every resolved address in turn, or staggered
    with ``happy_eyeballs_delay``) and return ``(transport, protocol)``."""
    if sock is not None:
        if host is not None or port is not None:
            raise ValueError("host/port and sock cannot both be given")
        if sock.type != socket.SOCK_STREAM:
            raise ValueError(f"a stream socket is required, got {sock!r}")
    else:
        if host is None and port is None:
            raise ValueError("host and port, or sock, must be given")
        infos = await _resolve(loop, host, port, family=family, type_=socket.SOCK_STREAM, proto=proto, flags=flags)
        if local_addr is not None:
            local_infos = await _resolve(
                loop, local_addr[0], local_addr[1], family=family, type_=socket.SOCK_STREAM, proto=proto
            )
            local_families = {info[0] for info in local_infos}
            infos = [info for info in infos if info[0] in local_families]
            if not infos:
                raise OSError(f"no address of {host!r} matches the family of local_addr {local_addr!r}")
        if happy_eyeballs_delay is not None and len(infos) > 1:
            sock = await _happy_eyeballs(loop, _interleave(infos), local_addr, happy_eyeballs_delay)
        else:
            errors: list[OSError] = []
            for info in infos:
                try:
                    sock = await _connect_one(loop, info, local_addr)
                    break
                except OSError as exc:
                    errors.append(exc)
            else:
                raise _combined_error(errors)
    assert sock is not None
    return await _start_transport(loop, sock, protocol_factory, StreamTransport)


def _interleave(infos: list[AddrInfo]) -> list[AddrInfo]:
    """Alternate address families, first family first (RFC 8305 §4)."""
    by_family: dict[int, list[AddrInfo]] = {}
    for info in infos:
        by_family.setdefault(info[0], []).append(info)
    groups = list(by_family.values())
    result: list[AddrInfo] = []
    for i in range(max(len(g) for g in groups)):
        result.extend(g[i] for g in groups if i < len(g))
    return result


async def _start_transport(
    loop: EventLoop, sock: socket.socket, protocol_factory: Callable[[], Any], transport_type: type, **options: Any
) -> tuple[Any, Any]:
    """Wrap a connected (or bound) socket in a transport of ``transport_type``
    and wait until its protocol has been told; on failure nothing is left open."""
    try:
        protocol = protocol_factory()
        waiter: Future[None] = loop.create_future()
        transport = transport_type(loop, sock, protocol, waiter=waiter, **options)
    except BaseException:
        sock.close()
        raise
    try:
        await waiter
    except BaseException:
        transport.abort()
        raise
    return transport, protocol


async def create_unix_connection(
    loop: EventLoop,
    protocol_factory: Callable[[], Protocol],
    path: str | None = None,
    *,
    sock: socket.socket | None = None,
) -> tuple[StreamTransport, Protocol]:
    """Connect to the Unix socket at ``path``; return ``(transport, protocol)``."""
    if sock is None:
        if path is None:
            raise ValueError("path or sock must be given")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            await _sock_connect(loop, sock, os.fspath(path))
        except BaseException:
            sock.close()
            raise
    elif path is not None:
        raise ValueError("path and sock cannot both be given")
    return await _start_transport(loop, sock, protocol_factory, StreamTransport)


# ---------------------------------------------------------------- listening


async def create_server(
    loop: EventLoop,
    protocol_factory: Callable[[], Protocol],
    host: str | Sequence[str] | None = None,
    port: int | str | None = None,
    *,
    family: int = socket.AF_UNSPEC,
    flags: int = socket.AI_PASSIVE,
    sock: socket.socket | None = None,
    backlog: int = DEFAULT_BACKLOG,
    reuse_address: bool | None = None,
    reuse_port: bool | None = None,
    start_serving: bool = True,
) -> Server:
    """Listen on ``host``:``port`` and return a ``Server``.

    ``host=None`` or ``""`` listens on every address family the machine has
    (IPv4 and IPv6, each socket IPv6-only so the two do not collide);
    ``port=0`` picks a free port, the same for every family where possible.
    ``SO_REUSEADDR`` is on by default so a restarted server can bind while old
    connections linger in TIME_WAIT.
    """
    if sock is not None:
        if host is not None or port is not None:
            raise ValueError("host/port and sock cannot both be given")
        sockets = [sock]
    else:
        if reuse_address is None:
            reuse_address = os.name == "posix"
        hosts: list[str | None]
        if host is None or host == "":
            hosts = [None]
        elif isinstance(host, str):
            hosts = [host]
        else:
            hosts = list(host)
        infos: list[AddrInfo] = []
        for one in hosts:
            for info in await _resolve(loop, one, port, family=family, type_=socket.SOCK_STREAM, flags=flags):
                if info not in infos:
                    infos.append(info)
        sockets = _bind_all(infos, reuse_address=reuse_address, reuse_port=bool(reuse_port), want_port=port)
    server = Server(loop, sockets, protocol_factory, backlog=backlog)
    if start_serving:
        server.start_serving_now()
    return server


def _bind_all(infos: list[AddrInfo], *, reuse_address: bool, reuse_port: bool, want_port: Any) -> list[socket.socket]:
    """Bind one socket per address; with port 0, reuse the first socket's port
    for the others so every family listens on the same number."""
    sockets: list[socket.socket] = []
    chosen_port: int | None = None
    try:
        for family, type_, proto, _, address in infos:
            if chosen_port is not None and not want_port:
                address = (address[0], chosen_port, *address[2:])
            sock = socket.socket(family, type_, proto)
            sockets.append(sock)
            if reuse_address:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                if not hasattr(socket, "SO_REUSEPORT"):
                    raise ValueError("reuse_port is not supported on this platform")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                # One socket per family: without V6ONLY the IPv6 socket would
                # also claim the IPv4 port and the IPv4 bind would fail.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                raise OSError(exc.errno, f"error while attempting to bind on address {address!r}: {exc.strerror}") from None
            if chosen_port is None:
                chosen_port = sock.getsockname()[1]
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


async def create_unix_server(
    loop: EventLoop,
    protocol_factory: Callable[[], Protocol],
    path: str | None = None,
    *,
    sock: socket.socket | None = None,
    backlog: int = DEFAULT_BACKLOG,
    start_serving: bool = True,
    cleanup_socket: bool = True,
) -> Server:
    """Listen on the Unix socket ``path`` and return a ``Server``.

    A socket file left behind by a crashed server (nobody accepts on it) is
    replaced; one that a live server still listens on is an
    ``OSError(EADDRINUSE)``, never silently stolen.  The file is removed when
    the server closes, unless ``cleanup_socket=False``.
    """
    paths: list[str] = []
    if sock is None:
        if path is None:
            raise ValueError("path or sock must be given")
        path = os.fspath(path)
        if not path.startswith("\0"):
            _remove_stale_socket(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"cannot bind Unix socket {path!r}: {exc.strerror}") from None
        if cleanup_socket and not path.startswith("\0"):
            paths.append(path)
    elif path is not None:
        raise ValueError("path and sock cannot both be given")
    server = Server(loop, [sock], protocol_factory, backlog=backlog, unix_paths=paths)
    if start_serving:
        server.start_serving_now()
    return server


def _remove_stale_socket(path: str, kind: int = socket.SOCK_STREAM) -> None:
    """Make way for ``bind(path)``: remove a socket file nothing is bound to any
    more (a leftover of a process that died), refuse one that is in use.

    A connect of a ``kind`` socket tells them apart: refused means nobody
    holds the path; a wrong-type error means a socket of the other type does.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(errno.EEXIST, f"{path!r} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, kind)
    # Non-blocking: a live server whose accept queue is full would otherwise
    # block this connect, and the loop with it.
    probe.setblocking(False)
    same_kind = True  # whether the socket holding the path is of our kind
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.remove(path)  # nobody holds it: a leftover
        return
    except BlockingIOError:
        pass  # a stream server listens, with a full queue
    except OSError as exc:
        if exc.errno != errno.EPROTOTYPE:
            return  # let bind() report the real problem
        same_kind = False  # a socket of the other type is bound there: in use
    finally:
        probe.close()
    if kind == socket.SOCK_STREAM and same_kind:
        raise OSError(errno.EADDRINUSE, f"a server is already listening on {path!r}")
    raise OSError(errno.EADDRINUSE, f"a socket is already bound to {path!r}")


# ---------------------------------------------------------------- datagrams


async def create_datagram_endpoint(
    loop: EventLoop,
    protocol_factory: Callable[[], DatagramProtocol],
    local_addr: Any = None,
    remote_addr: Any = None,
    *,
    family: int = 0,
    proto: int = 0,
    flags: int = 0,
    reuse_port: bool | None = None,
    allow_broadcast: bool | None = None,
    sock: socket.socket | None = None,
) -> tuple[DatagramTransport, DatagramProtocol]:
    """Open a UDP endpoint (a Unix datagram one when ``family=AF_UNIX``).

    With ``remote_addr`` the socket is connected: ``sendto(data)`` needs no
    address, only that peer's datagrams arrive, and ICMP errors (port
    unreachable) reach ``error_received``.
    """
    peer: Any = None
    if sock is None:
        if family == socket.AF_UNIX:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                if local_addr is not None:
                    if isinstance(local_addr, str) and not local_addr.startswith("\0"):
                        _remove_stale_socket(local_addr, socket.SOCK_DGRAM)
                    sock.bind(local_addr)
                if remote_addr is not None:
                    sock.connect(remote_addr)
                    peer = remote_addr
            except BaseException:
                sock.close()
                raise
        else:
            local_infos = remote_infos = None
            if local_addr is not None:
                local_infos = await _resolve(
                    loop, local_addr[0], local_addr[1], family=family, type_=socket.SOCK_DGRAM, proto=proto, flags=flags
                )
            if remote_addr is not None:
                remote_infos = await _resolve(
                    loop, remote_addr[0], remote_addr[1], family=family, type_=socket.SOCK_DGRAM, proto=proto, flags=flags
                )
            sock, peer = _open_datagram_socket(local_infos, remote_infos, reuse_port, allow_broadcast)
    else:
        if local_addr is not None or remote_addr is not None:
            raise ValueError("local_addr/remote_addr and sock cannot both be given")
        try:
            peer = sock.getpeername()
        except OSError:
            peer = None
    return await _start_transport(loop, sock, protocol_factory, DatagramTransport, address=peer)


def _open_datagram_socket(
    local_infos: list[AddrInfo] | None,
    remote_infos: list[AddrInfo] | None,
    reuse_port: bool | None,
    allow_broadcast: bool | None,
) -> tuple[socket.socket, Any]:
    # Pair local and remote addresses of the same family; try each pair in turn.
    families: list[int] = []
    for infos in (local_infos, remote_infos):
        for info in infos or ():
            if info[0] not in families:
                families.append(info[0])
    if not families:
        families = [socket.AF_INET]
    errors: list[OSError] = []
    for fam in families:
        local = next((i[4] for i in local_infos or () if i[0] == fam), None)
        remote = next((i[4] for i in remote_infos or () if i[0] == fam), None)
        if local_infos and local is None or remote_infos and remote is None:
            continue
        sock = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            if reuse_port:
                if not hasattr(socket, "SO_REUSEPORT"):
                    raise ValueError("reuse_port is not supported on this platform")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if allow_broadcast:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            if local is not None:
                sock.bind(local)
            if remote is not None:
                sock.connect(remote)
            return sock, remote
        except OSError as exc:
            sock.close()
            errors.append(exc)
        except BaseException:
            sock.close()
            raise
    if errors:
        raise _combined_error(errors)
    raise OSError("no address family matches both local_addr and remote_addr")


