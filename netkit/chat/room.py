"""The chat's application core: rooms, members, nicknames, history and limits.

:class:`ChatHub` is sans-I/O.  A door (the WebSocket handler, the framed TCP
protocol, a test) wraps each connection in a :class:`Member` and tells the hub
three things: a member connected (:meth:`ChatHub.connect`), a member sent this
text (:meth:`ChatHub.receive`), a member went away
(:meth:`ChatHub.disconnect`).  The hub answers by calling ``member.send(text)``
and ``member.close(reason)``.  Nothing here blocks, awaits or touches a
socket, so every rule is tested with plain objects and a fake clock.

The rules a public server needs, each a field of :class:`ChatLimits`:

* message size: a text over ``max_text_bytes`` gets a ``too_long`` error;
* flooding: every client message costs a token from a bucket that refills at
  ``rate`` per second up to ``burst``; the first message over the limit is
  dropped with a ``rate_limited`` error, and if the next one is over the
  limit too, the client is disconnected;
* groups of senders: the connections from one address share a second bucket
  (``address_rate``, ``address_burst``; a message over it gets
  ``rate_limited`` and the connection stays), and there are at most
  ``max_clients_per_address`` of them (the next gets
  ``too_many_connections`` and is closed);
* fan-out: the bytes entering a room (every message and notice, as each
  member receives it) come from a bucket of ``room_byte_rate`` bytes a second
  up to ``room_byte_burst``; a message that would overdraw it is refused with
  ``room_busy``.  That rate is the slowest reader the room keeps up with: a
  member reading at least that fast is never dropped as slow, whoever sends;
* capacity: past ``max_clients`` connections a newcomer gets ``server_full``
  and is closed; past ``max_rooms`` rooms, ``/join`` of a new one is refused;
* silence: a connection that has not joined after ``join_timeout`` is closed,
  and members connected with ``keepalive=True`` (doors without their own
  pings) get a ``ping`` after ``ping_interval`` seconds of silence and are
  closed if nothing comes back within ``ping_timeout``;
* slow clients never slow the room: ``send()`` only queues, and a member whose
  queue is over its limit returns ``False``; the hub skips it, counts it and
  disconnects it, and everyone else gets the message at once.

Ordering: the hub handles one message at a time and queues each broadcast to
every member before handling the next, so everyone in a room sees its
messages in the order the hub received them, whichever door they came in by.
"""

from __future__ import annotations

import collections
import enum
import ipaddress
import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol as TypingProtocol

from . import protocol
from .protocol import ChatError, ErrorCode
from .ratelimit import TokenBucket

__all__ = ["CloseReason", "ChatLimits", "HubStats", "Member", "Room", "ChatHub", "address_key"]

logger = logging.getLogger("netkit.chat")


class CloseReason(enum.StrEnum):
    """Why the hub closes a member; doors map it to their own answer
    (a WebSocket close code, for instance)."""

    FLOODING = "flooding"
    SLOW = "too slow to keep up"
    SERVER_FULL = "server full"
    TOO_MANY_CONNECTIONS = "too many connections from this address"
    JOIN_TIMEOUT = "no join in time"
    KEEPALIVE_TIMEOUT = "no answer to ping"
    SHUTDOWN = "server shutting down"


@dataclass(frozen=True, slots=True)
class ChatLimits:
    """Every limit of a chat server, with defaults for a small public one.

    ``send_buffer_limit`` left at ``None`` is computed from the others (see
    :attr:`min_send_buffer_limit`); an explicit value below that is refused.
    """

    # 4 KiB of UTF-8 text per message: several screenfuls of chat, and the
    # default the chat's specification asks for.
    max_text_bytes: int = 4096
    # About the open-file limit most systems start a process with (1024),
    # less what the server itself uses.
    max_clients: int = 1000
    # Rooms are created by /join; with 50 messages of at most 4 KiB each,
    # 100 rooms bound history memory to about 20 MB.
    max_rooms: int = 100
    # Newcomers see the last 50 messages of their room: about a screen of
    # scroll-back, enough to pick up the thread of a conversation.
    history_size: int = 50
    # 2 messages a second on average, bursts of 10: a fast typist never
    # notices (about one line a second at most), pasting a few lines is
    # fine, a script in a loop runs dry within seconds.
    rate: float = 2.0
    burst: int = 10
    # Seconds a connection may stay without joining: the same as the
    # WebSocket opening handshake's open_timeout (10 s).  Clients send their
    # join as soon as they connect.
    join_timeout: float = 10.0
    # Keepalive for doors without their own pings (framed TCP): the same
    # 20 s + 20 s as the WebSocket server's ping_interval and ping_timeout,
    # so a dead client is noticed within a minute on either door.
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    # Bytes a client may have waiting in its send buffer before it counts as
    # slow.  None: min_send_buffer_limit, the least that keeps the promise
    # that a reader at room_byte_rate is never dropped (about 530 KiB with
    # the other defaults).
    send_buffer_limit: int | None = None
    # Connections from one address (see address_key: an IPv6 /64 counts as
    # one).  IRC networks allow 3 to 10 per host; 10 leaves room for a
    # household or a small office behind one NAT, and it takes 100
    # addresses to fill max_clients.  Behind a reverse proxy every client
    # has the proxy's address: raise this and address_rate there.
    max_clients_per_address: int = 10
    # Messages a second from one address, all its connections together: 5
    # a second, bursts of 20, lets two or three people behind one NAT type
    # and paste as freely as one may (rate, burst), while ten connections
    # from one host get no more than two and a half would.
    address_rate: float = 5.0
    address_burst: int = 20
    # Bytes a second entering one room, as each member receives them: the
    # slowest reader the chat promises to keep up with.  64 KiB/s (512
    # kbit/s, a poor mobile link) carries 15 messages of the largest size a
    # second, or hundreds of ordinary lines: more than people can read.
    room_byte_rate: int = 64 * 1024
    # One second of that at once: the room's burst is what a reader may fall
    # behind by, and it is part of min_send_buffer_limit.
    room_byte_burst: int = 64 * 1024

    def __post_init__(self) -> None:
        for name in (
            "max_text_bytes",
            "max_clients",
            "max_rooms",
            "history_size",
            "burst",
            "max_clients_per_address",
            "address_burst",
            "room_byte_rate",
            "room_byte_burst",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"ChatLimits.{name} must be at least 1, not {getattr(self, name)}")
        for name in ("rate", "address_rate", "join_timeout", "ping_interval", "ping_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ChatLimits.{name} must be positive, not {getattr(self, name)}")
        needed = self.min_send_buffer_limit
        if self.send_buffer_limit is None:
            object.__setattr__(self, "send_buffer_limit", needed)  # frozen: set once, here
        elif self.send_buffer_limit < needed:
            raise ValueError(
                f"ChatLimits.send_buffer_limit={self.send_buffer_limit} is below {needed}: the largest welcome "
                f"({self.max_welcome_bytes}), a room's burst ({self.room_burst_bytes}) and the largest /who answer "
                f"({protocol.max_who_bytes(self.max_clients)}); raise it, leave it out, or lower history_size, "
                "max_text_bytes, max_clients or room_byte_burst"
            )

    @property
    def max_message_bytes(self) -> int:
        """The largest client message accepted on the wire: JSON may escape any
        character as ``\\uXXXX`` (6 bytes for one byte of text), plus 1 KiB
        for the other fields."""
        return 6 * self.max_text_bytes + 1024

    @property
    def max_welcome_bytes(self) -> int:
        """The largest ``welcome`` the server can send: a full history of the
        largest messages and a room holding every client."""
        return protocol.max_welcome_bytes(self.history_size, self.max_text_bytes, self.max_clients)

    @property
    def room_burst_bytes(self) -> int:
        """What a room may send at once: its burst, or its largest message if
        that is larger (a full budget lets one through)."""
        return max(self.room_byte_burst, protocol.max_chat_message_bytes(self.max_text_bytes))

    @property
    def min_send_buffer_limit(self) -> int:
        """The least ``send_buffer_limit`` with which a member that reads at
        least ``room_byte_rate`` is never dropped: its welcome, plus what its
        room may send at once, plus the largest answer to its own ``/who``."""
        return self.max_welcome_bytes + self.room_burst_bytes + protocol.max_who_bytes(self.max_clients)


@dataclass(slots=True)
class HubStats:
    """Counters for the log and for tests."""

    connections: int = 0  # connections accepted
    refused_full: int = 0  # connections refused because the server was full
    messages: int = 0  # chat messages accepted and broadcast
    errors: int = 0  # error replies sent
    slow_dropped: int = 0  # members disconnected because their send buffer was full
    flood_dropped: int = 0  # members disconnected for flooding
    timed_out: int = 0  # members closed by the join or keepalive timeout
    refused_address: int = 0  # connections refused: too many from one address
    address_limited: int = 0  # messages refused: over their address's rate
    room_busy: int = 0  # messages refused: over their room's byte budget


class Member(TypingProtocol):
    """One connection as the hub sees it."""

    door: str  # which door it came in by ("ws", "tcp"), for the log
    peer: str  # its address, for the log

    def send(self, text: str) -> bool:
        """Queue ``text`` (one JSON object) without waiting.  Return ``False``
        when the connection's send buffer is over its limit (nothing queued)."""
        ...

    def close(self, reason: CloseReason) -> None:
        """Close the connection (without waiting); the door will then call
        :meth:`ChatHub.disconnect`, which is a no-op for a member the hub closed."""
        ...


def address_key(host: str) -> str:
    """What the per-address limits count ``host`` (a peer's IP address) as.

    An IPv4 address counts as itself, and so does one mapped into IPv6.  An
    IPv6 address counts as its /64 network: RFC 4291 §2.5.4 gives a link's
    hosts a 64-bit interface identifier, and a subscriber gets at least a /64
    (RFC 6177), so one host may hold countless addresses of the same /64.
    Anything else (a Unix socket's path) counts as it is.
    """
    try:
        ip = ipaddress.ip_address(host.partition("%")[0])  # without an IPv6 zone index
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(eq=False, slots=True)
class _Address:
    """The connections from one address, and the message bucket they share."""

    key: str
    bucket: TokenBucket
    connections: int = 0


@dataclass(eq=False, slots=True)
class _Session:
    """What the hub knows about one member."""

    member: Member
    bucket: TokenBucket
    connected_at: float
    last_heard: float
    keepalive: bool
    address: _Address | None = None
    nick: str | None = None
    room: Room | None = None
    warned: bool = False  # told "rate_limited" and has not slowed down since
    ping_sent_at: float | None = None
    closing: bool = False


@dataclass(eq=False, slots=True)
class Room:
    """A room: its members (by nickname, in join order), its recent history,
    and its budget of bytes entering it."""

    name: str
    history: collections.deque[protocol.ServerMessage]
    budget: TokenBucket
    sessions: dict[str, _Session] = field(default_factory=dict)

    def nicks(self) -> list[str]:
        """Members' nicknames, sorted the way people read lists."""
        return sorted(self.sessions, key=str.lower)


def _format_fields(event: str, fields: dict[str, object]) -> str:
    """``event=join nick=ann ...``: one line, values quoted when they hold spaces."""
    parts = [f"event={event}"]
    for key, value in fields.items():
        text = "-" if value is None else str(value)
        if not text or any(c in text for c in ' "=\\') or not text.isprintable():
            text = json.dumps(text)
        parts.append(f"{key}={text}")
    return " ".join(parts)


class ChatHub:
    """Rooms and members, driven by what the doors report (see the module docs)."""

    def __init__(
        self,
        limits: ChatLimits | None = None,
        *,
        default_room: str = protocol.DEFAULT_ROOM,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.limits = limits if limits is not None else ChatLimits()
        self.stats = HubStats()
        self._clock = clock
        self._wall_clock = wall_clock
        self._sessions: dict[Member, _Session] = {}
        self._nicks: dict[str, _Session] = {}  # lower-cased nickname -> session
        self._rooms: dict[str, Room] = {}
        self._addresses: dict[str, _Address] = {}  # address_key -> its connections
        self._next_id = 1
        self.default_room = protocol.normalize_room(default_room)
        self._rooms[self.default_room] = self._new_room(self.default_room)

    # ---------------------------------------------------------------- queries

    @property
    def client_count(self) -> int:
        """Connections the hub is tracking, joined or not."""
        return len(self._sessions)

    @property
    def address_count(self) -> int:
        """Addresses the per-address limits are tracking: those with
        connections, and those whose bucket has not refilled since."""
        return len(self._addresses)

    def room_names(self) -> list[str]:
        """Every room that exists now (the default room always does)."""
        return sorted(self._rooms)

    def members(self, room: str) -> list[str]:
        """Nicknames in ``room`` (empty if there is no such room)."""
        found = self._rooms.get(protocol.normalize_room(room))
        return found.nicks() if found is not None else []

    def history(self, room: str) -> list[protocol.ServerMessage]:
        """The messages a newcomer to ``room`` would be shown, oldest first."""
        found = self._rooms.get(protocol.normalize_room(room))
        return list(found.history) if found is not None else []

    # ---------------------------------------------------- events from the doors

    def connect(self, member: Member, *, keepalive: bool = False, address: str | None = None) -> bool:
        """A connection opened, from the IP ``address`` if the door knows it
        (``None``: no per-address limits).  Returns ``False`` when it is
        refused (the server is full, or its address has too many
        connections): the member has then been sent an error and closed."""
        if member in self._sessions:
            raise ValueError(f"{member!r} is already connected")
        limits = self.limits
        if len(self._sessions) >= limits.max_clients:
            self.stats.refused_full += 1
            error = ChatError(ErrorCode.SERVER_FULL, "the server is full; try again later")
            self._refuse(member, CloseReason.SERVER_FULL, error, clients=len(self._sessions))
            return False
        origin = self._address_for(address) if address is not None else None
        if origin is not None and origin.connections >= limits.max_clients_per_address:
            self.stats.refused_address += 1
            message = (
                f"too many connections from your address (the server takes {limits.max_clients_per_address} "
                "from one); close one and try again"
            )
            error = ChatError(ErrorCode.TOO_MANY_CONNECTIONS, message)
            self._refuse(member, CloseReason.TOO_MANY_CONNECTIONS, error, address=origin.key)
            return False
        now = self._clock()
        self._sessions[member] = _Session(
            member=member,
            bucket=TokenBucket(limits.rate, limits.burst, self._clock),
            connected_at=now,
            last_heard=now,
            keepalive=keepalive,
            address=origin,
        )
        if origin is not None:
            origin.connections += 1
        self.stats.connections += 1
        return True

    def receive(self, member: Member, raw: str | bytes) -> None:
        """``member`` sent one message (a WebSocket message or a frame's payload)."""
        session = self._admit(member)
        if session is None:
            return
        try:
            message = protocol.parse_client_message(
                raw, max_message_bytes=self.limits.max_message_bytes, max_text_bytes=self.limits.max_text_bytes
            )
            self._dispatch(session, message)
        except ChatError as exc:
            self._answer_error(session, exc)

    def reject(self, member: Member, error: ChatError) -> None:
        """``member`` sent something its door does not carry (a binary
        WebSocket message): it costs what any message costs, and ``error``
        is the answer."""
        session = self._admit(member)
        if session is not None:
            self._answer_error(session, error)

    def disconnect(self, member: Member, reason: str = "quit") -> None:
        """``member``'s connection is gone (the door's ``connection_lost``, or
        the end of its handler).  Safe to call more than once."""
        session = self._sessions.get(member)
        if session is None or session.closing:
            return
        session.closing = True
        self._remove(session, reason)

    def sweep(self) -> None:
        """Apply the join and keepalive timeouts, and forget addresses with no
        connection left once their bucket is full again; call it every second or so."""
        now = self._clock()
        limits = self.limits
        for key, address in list(self._addresses.items()):
            # Kept until then, so that reconnecting does not refill the bucket.
            if address.connections == 0 and address.bucket.full:
                del self._addresses[key]
        for session in list(self._sessions.values()):
            if session.closing:
                continue
            if session.nick is None:
                if now - session.connected_at >= limits.join_timeout:
                    self.stats.timed_out += 1
                    message = f"no join within {limits.join_timeout:g} seconds"
                    self._send(session, protocol.error(ErrorCode.JOIN_TIMEOUT, message))
                    self._drop(session, CloseReason.JOIN_TIMEOUT)
                continue
            if not session.keepalive:
                continue
            if session.ping_sent_at is not None:
                if now - session.ping_sent_at >= limits.ping_timeout:
                    self.stats.timed_out += 1
                    self._drop(session, CloseReason.KEEPALIVE_TIMEOUT)
            elif now - session.last_heard >= limits.ping_interval:
                session.ping_sent_at = now
                self._send(session, protocol.ping())

    def shutdown(self) -> None:
        """Close every member with :attr:`CloseReason.SHUTDOWN` and forget them all."""
        sessions = list(self._sessions.values())
        self._log(logging.INFO, "shutdown", None, None, clients=len(sessions))
        for session in sessions:
            session.closing = True
        self._sessions.clear()
        self._nicks.clear()
        self._addresses.clear()
        for room in self._rooms.values():
            room.sessions.clear()
        for session in sessions:
            session.member.close(CloseReason.SHUTDOWN)

    # ------------------------------------------------------------ dispatching

    def _dispatch(self, session: _Session, message: protocol.ClientMessage) -> None:
        if isinstance(message, protocol.Pong):
            return  # its arrival already counted as a sign of life
        if isinstance(message, protocol.Ping):
            self._send(session, protocol.pong())
            return
        if isinstance(message, protocol.Help):
            self._send(session, protocol.info(protocol.HELP_TEXT))
            return
        if isinstance(message, protocol.Join):
            self._join(session, message)
            return
        room = session.room
        if room is None:
            raise ChatError(ErrorCode.NOT_JOINED, "send a join with your nickname first")
        if isinstance(message, protocol.Say):
            self._say(session, room, message.text)
        elif isinstance(message, protocol.Who):
            self._send(session, protocol.who(room.name, room.nicks()))
        elif isinstance(message, protocol.SwitchRoom):
            self._switch(session, room, message.room)

    def _join(self, session: _Session, message: protocol.Join) -> None:
        if session.nick is not None:
            raise ChatError(ErrorCode.ALREADY_JOINED, f"you are already in as {session.nick}")
        key = message.nick.lower()
        if key in self._nicks:
            raise ChatError(ErrorCode.NICK_TAKEN, f"the nickname {message.nick} is taken; pick another")
        room = self._room_for(message.room)
        session.nick = message.nick
        self._nicks[key] = session
        self._log(logging.INFO, "join", session, room=room.name)
        self._enter(session, room)

    def _say(self, session: _Session, room: Room, text: str) -> None:
        assert session.nick is not None
        message = protocol.chat_message(self._next_id, room.name, session.nick, text, self._wall_clock())
        encoded = protocol.encode(message)
        size = protocol.utf8_size(encoded)
        if not room.budget.take(size):
            self.stats.room_busy += 1
            raise self._room_busy(room, size)
        self._next_id += 1
        self.stats.messages += 1
        room.history.append(message)
        self._fan_out(room, encoded)

    def _room_busy(self, room: Room, size: int) -> ChatError:
        limits = self.limits
        # Tenths of a second, rounded up: "try again in 0.0 s" would be wrong.
        wait = max(0.1, math.ceil(room.budget.wait_time(size) * 10) / 10)
        return ChatError(
            ErrorCode.ROOM_BUSY,
            f"#{room.name} is busy: a room carries at most {limits.room_byte_rate} bytes a second "
            f"(bursts of {limits.room_byte_burst}); your message was not sent, try again in {wait:g} s",
        )

    def _switch(self, session: _Session, room: Room, name: str) -> None:
        if name == room.name:
            self._send(session, protocol.info(f"you are already in #{name}"))
            return
        target = self._room_for(name)  # may refuse; then nothing has changed
        self._log(logging.INFO, "move", session, room=room.name, to=target.name)
        self._leave(session, room, "moved")
        self._enter(session, target)

    # ------------------------------------------------------- rooms and members

    def _new_room(self, name: str) -> Room:
        limits = self.limits
        budget = TokenBucket(limits.room_byte_rate, limits.room_byte_burst, self._clock)
        return Room(name, collections.deque(maxlen=limits.history_size), budget)

    def _address_for(self, address: str) -> _Address:
        key = address_key(address)
        found = self._addresses.get(key)
        if found is None:
            limits = self.limits
            found = self._addresses[key] = _Address(key, TokenBucket(limits.address_rate, limits.address_burst, self._clock))
        return found

    def _room_for(self, name: str) -> Room:
        room = self._rooms.get(name)
        if room is not None:
            return room
        if len(self._rooms) >= self.limits.max_rooms:
            raise ChatError(ErrorCode.TOO_MANY_ROOMS, f"there are already {len(self._rooms)} rooms; join one of them")
        room = self._new_room(name)
        self._rooms[name] = room
        return room

    def _enter(self, session: _Session, room: Room) -> None:
        assert session.nick is not None
        self._broadcast(room, protocol.joined(room.name, session.nick, self._wall_clock()))
        room.sessions[session.nick] = session
        session.room = room
        greeting = protocol.welcome(session.nick, room.name, room.nicks(), list(room.history), self.limits.max_text_bytes)
        self._send(session, greeting)

    def _leave(self, session: _Session, room: Room, reason: str) -> None:
        assert session.nick is not None
        room.sessions.pop(session.nick, None)
        session.room = None
        if not room.sessions and room.name != self.default_room:
            del self._rooms[room.name]  # an empty room costs nothing once gone
            return
        self._broadcast(room, protocol.left(room.name, session.nick, reason, self._wall_clock()))

    def _remove(self, session: _Session, reason: str) -> None:
        """Forget a session that is closing: its room hears it left."""
        self._sessions.pop(session.member, None)
        if session.address is not None:
            session.address.connections -= 1
        if session.nick is not None:
            self._nicks.pop(session.nick.lower(), None)
            self._log(logging.INFO, "leave", session, room=session.room.name if session.room else None, reason=reason)
        if session.room is not None:
            self._leave(session, session.room, reason)

    # ---------------------------------------------------------------- sending

    def _send(self, session: _Session, message: protocol.ServerMessage) -> None:
        if session.closing:
            return
        if not session.member.send(protocol.encode(message)):
            self._drop_slow([session])

    def _broadcast(self, room: Room, message: protocol.ServerMessage) -> None:
        """Send a notice (joined, left) to the room.  A notice cannot be
        refused, but its bytes count against the room's budget all the same."""
        if not room.sessions:
            return  # nobody to tell
        text = protocol.encode(message)
        room.budget.spend(protocol.utf8_size(text))
        self._fan_out(room, text)

    def _fan_out(self, room: Room, text: str) -> None:
        # Encoded once for everyone; send() only queues, so the loop takes as
        # long for a room of slow readers as for a room of fast ones.
        slow = [session for session in list(room.sessions.values()) if not session.closing and not session.member.send(text)]
        if slow:
            self._drop_slow(slow)

    def _drop_slow(self, sessions: list[_Session]) -> None:
        for session in sessions:
            if session.closing:
                continue
            self.stats.slow_dropped += 1
            self._log(
                logging.WARNING,
                "slow_client_dropped",
                session,
                limit=self.limits.send_buffer_limit,
                total=self.stats.slow_dropped,
            )
            self._drop(session, CloseReason.SLOW)

    def _admit(self, member: Member) -> _Session | None:
        """The session of ``member`` if its new message is within its rate
        limits; otherwise ``None`` (the member has been answered, or dropped)."""
        session = self._sessions.get(member)
        if session is None or session.closing:
            return None  # arrived after the hub closed it
        session.last_heard = self._clock()
        session.ping_sent_at = None
        # The rate limits come first, so that even invalid messages cost a
        # token: a flood of garbage is a flood.
        if not session.bucket.take():
            self._over_rate(session)
            return None
        session.warned = False
        address = session.address
        if address is not None and not address.bucket.take():
            # Not this connection's fault alone: refused, but never closed for it.
            self.stats.address_limited += 1
            limits = self.limits
            message = (
                f"slow down: your address may send at most {limits.address_rate:g} messages a second "
                f"(bursts of {limits.address_burst}) over all its connections; this one was dropped"
            )
            self._answer_error(session, ChatError(ErrorCode.RATE_LIMITED, message))
            return None
        return session

    def _answer_error(self, session: _Session, error: ChatError) -> None:
        self.stats.errors += 1
        self._log(logging.INFO, "error", session, code=error.code, message=error.message)
        self._send(session, protocol.error(error.code, error.message))

    def _refuse(self, member: Member, reason: CloseReason, error: ChatError, **fields: object) -> None:
        """Turn a connection away: tell it why, then close it."""
        self._log(logging.WARNING, "refused", None, member, reason=reason, **fields)
        member.send(protocol.encode(protocol.error(error.code, error.message)))
        member.close(reason)

    def _over_rate(self, session: _Session) -> None:
        if not session.warned:
            session.warned = True
            self.stats.errors += 1
            limits = self.limits
            message = f"slow down: at most {limits.rate:g} messages a second (bursts of {limits.burst}); this one was dropped"
            self._log(logging.INFO, "error", session, code=ErrorCode.RATE_LIMITED)
            self._send(session, protocol.error(ErrorCode.RATE_LIMITED, message))
            return
        self.stats.flood_dropped += 1
        self._log(logging.WARNING, "flood_dropped", session, total=self.stats.flood_dropped)
        self._send(session, protocol.error(ErrorCode.RATE_LIMITED, "disconnected for flooding"))
        self._drop(session, CloseReason.FLOODING)

    def _drop(self, session: _Session, reason: CloseReason) -> None:
        """Close a member on the hub's initiative."""
        if session.closing:
            return
        session.closing = True
        self._remove(session, str(reason))
        session.member.close(reason)

    # ---------------------------------------------------------------- logging

    def _log(self, level: int, event: str, session: _Session | None, member: Member | None = None, **fields: object) -> None:
        if not logger.isEnabledFor(level):
            return
        who: dict[str, object] = {}
        if session is not None:
            member = session.member
            who["nick"] = session.nick
        if member is not None:
            who["door"] = member.door
            who["peer"] = member.peer
        logger.log(level, "%s", _format_fields(event, {**who, **fields}))
