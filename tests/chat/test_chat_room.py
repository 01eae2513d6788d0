"""The chat hub, without sockets: plain member objects and a hand-moved clock."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from netkit.chat import ChatHub, ChatLimits, CloseReason, protocol
from netkit.chat.protocol import ErrorCode
from netkit.chat.room import address_key


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeMember:
    """Records what the hub sends; ``full`` makes its send buffer over the limit."""

    def __init__(self, name: str, hub: ChatHub | None = None) -> None:
        self.door = "test"
        self.peer = name
        self.hub = hub
        self.sent: list[dict[str, Any]] = []
        self.closed: CloseReason | None = None
        self.full = False

    def send(self, text: str) -> bool:
        assert self.closed is None, "the hub sent to a member it closed"
        if self.full:
            return False
        self.sent.append(json.loads(text))
        return True

    def close(self, reason: CloseReason) -> None:
        assert self.closed is None, "closed twice"
        self.closed = reason
        if self.hub is not None:
            # A door reports the loss later; doing it at once must be harmless too.
            self.hub.disconnect(self)

    def types(self) -> list[str]:
        return [message["type"] for message in self.sent]

    def last(self) -> dict[str, Any]:
        return self.sent[-1]

    def take(self) -> list[dict[str, Any]]:
        sent, self.sent = self.sent, []
        return sent

    def texts(self) -> list[str]:
        return [message["text"] for message in self.sent if message["type"] == "message"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def hub(clock: FakeClock) -> ChatHub:
    return ChatHub(ChatLimits(), clock=clock, wall_clock=lambda: 1700000000.0)


def send(hub: ChatHub, member: FakeMember, **message: Any) -> None:
    hub.receive(member, json.dumps(message))


def joined(hub: ChatHub, nick: str, room: str = "lobby") -> FakeMember:
    member = FakeMember(nick, hub)
    assert hub.connect(member)
    send(hub, member, type="join", nick=nick, room=room)
    assert member.last()["type"] == "welcome", member.sent
    member.take()
    return member


# ------------------------------------------------------------------ joining


def test_join_welcomes_and_notifies_the_room(hub: ChatHub) -> None:
    ann = joined(hub, "ann")
    bob = FakeMember("bob")
    hub.connect(bob)
    send(hub, bob, type="join", nick="bob")
    assert bob.sent == [
        {
            "type": "welcome",
            "nick": "bob",
            "room": "lobby",
            "members": ["ann", "bob"],
            "history": [],
            "max_text_bytes": 4096,
        }
    ]
    assert ann.sent == [{"type": "joined", "room": "lobby", "nick": "bob", "ts": 1700000000.0}]


def test_nicknames_are_unique_ignoring_case(hub: ChatHub) -> None:
    joined(hub, "Ann")
    other = FakeMember("other")
    hub.connect(other)
    send(hub, other, type="join", nick="aNN")
    assert other.last()["code"] == ErrorCode.NICK_TAKEN
    # Still connected and not joined: it may try another nickname.
    send(hub, other, type="join", nick="ann2")
    assert other.last()["type"] == "welcome"
    assert hub.members("lobby") == ["Ann", "ann2"]


def test_invalid_nickname_is_refused(hub: ChatHub) -> None:
    member = FakeMember("m")
    hub.connect(member)
    send(hub, member, type="join", nick="no spaces")
    assert member.last()["code"] == ErrorCode.INVALID_NICK
    assert hub.members("lobby") == []


def test_a_nickname_is_free_again_after_leaving(hub: ChatHub) -> None:
    ann = joined(hub, "ann")
    hub.disconnect(ann)
    joined(hub, "ann")


def test_joining_twice_is_an_error(hub: ChatHub) -> None:
    ann = joined(hub, "ann")
    send(hub, ann, type="join", nick="ann2")
    assert ann.last()["code"] == ErrorCode.ALREADY_JOINED


def test_only_join_ping_pong_and_help_before_joining(hub: ChatHub) -> None:
    member = FakeMember("m")
    hub.connect(member)
    for message in ({"type": "say", "text": "hi"}, {"type": "who"}, {"type": "room", "room": "x"}):
        send(hub, member, **message)
        assert member.last()["code"] == ErrorCode.NOT_JOINED
    send(hub, member, type="ping")
    assert member.last() == {"type": "pong"}
    send(hub, member, type="help")
    assert member.last()["type"] == "info"
    send(hub, member, type="pong")
    assert member.last()["type"] == "info"  # a pong gets no answer


# ------------------------------------------------------------------ messages


def test_say_reaches_everyone_in_the_room_including_the_sender(hub: ChatHub) -> None:
    ann, bob = joined(hub, "ann"), joined(hub, "bob")
    ann.take()
    send(hub, ann, type="say", text="hello")
    expected = {"type": "message", "id": 1, "room": "lobby", "nick": "ann", "text": "hello", "ts": 1700000000.0}
    assert ann.sent == [expected]
    assert bob.sent == [expected]


def test_rooms_are_separate(hub: ChatHub) -> None:
    ann = joined(hub, "ann")
    bob = joined(hub, "bob", room="python")
    send(hub, ann, type="say", text="in the lobby")
    assert bob.texts() == []
    assert hub.room_names() == ["lobby", "python"]


def test_order_is_the_order_received_for_everyone(hub: ChatHub) -> None:
    members = [joined(hub, f"user{i}") for i in range(4)]
    for member in members:
        member.take()
    for round_number in range(5):
        for index, member in enumerate(members):
            send(hub, member, type="say", text=f"{round_number}-{index}")
    expected = [f"{r}-{i}" for r in range(5) for i in range(4)]
    for member in members:
        assert member.texts() == expected
        ids = [m["id"] for m in member.sent if m["type"] == "message"]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_history_replays_exactly_the_last_50(hub: ChatHub, clock: FakeClock) -> None:
    ann = joined(hub, "ann")
    for number in range(60):
        send(hub, ann, type="say", text=f"message {number}")
        clock.advance(1)  # stay under the rate limit
    bob = FakeMember("bob")
    hub.connect(bob)
    send(hub, bob, type="join", nick="bob")
    history = bob.last()["history"]
    assert [m["text"] for m in history] == [f"message {n}" for n in range(10, 60)]
    assert all(m["type"] == "message" and m["nick"] == "ann" for m in history)


def test_history_size_is_a_limit(clock: FakeClock) -> None:
    hub = ChatHub(ChatLimits(history_size=3), clock=clock)
    ann = joined(hub, "ann")
    for number in range(5):
        send(hub, ann, type="say", text=str(number))
    assert [m["text"] for m in hub.history("lobby")] == ["2", "3", "4"]


def test_who_lists_the_room(hub: ChatHub) -> None:
    joined(hub, "zed")
    joined(hub, "Amy")
    joined(hub, "elsewhere", room="other")
    bob = joined(hub, "bob")
    send(hub, bob, type="say", text="/who")
    assert bob.last() == {"type": "who", "room": "lobby", "members": ["Amy", "bob", "zed"]}
    send(hub, bob, type="who")
    assert bob.last()["members"] == ["Amy", "bob", "zed"]


# --------------------------------------------------------------------- rooms


def test_join_command_moves_between_rooms(hub: ChatHub) -> None:
    ann, bob = joined(hub, "ann"), joined(hub, "bob")
    carol = joined(hub, "carol", room="python")
    ann.take()
    send(hub, bob, type="say", text="/join Python")
    assert ann.sent == [{"type": "left", "room": "lobby", "nick": "bob", "reason": "moved", "ts": 1700000000.0}]
    assert carol.sent == [{"type": "joined", "room": "python", "nick": "bob", "ts": 1700000000.0}]
    welcome = bob.last()
    assert (welcome["type"], welcome["room"], welcome["members"]) == ("welcome", "python", ["bob", "carol"])
    send(hub, bob, type="room", room="python")
    assert bob.last()["type"] == "info"


def test_switching_room_replays_that_rooms_history(hub: ChatHub) -> None:
    carol = joined(hub, "carol", room="python")
    send(hub, carol, type="say", text="earlier")
    bob = joined(hub, "bob")
    send(hub, bob, type="room", room="python")
    assert [m["text"] for m in bob.last()["history"]] == ["earlier"]


def test_empty_rooms_go_away_but_the_default_room_stays(hub: ChatHub) -> None:
    ann = joined(hub, "ann", room="python")
    assert hub.room_names() == ["lobby", "python"]
    send(hub, ann, type="room", room="lobby")
    assert hub.room_names() == ["lobby"]
    hub.disconnect(ann)
    assert hub.room_names() == ["lobby"]


def test_room_count_is_limited(clock: FakeClock) -> None:
    hub = ChatHub(ChatLimits(max_rooms=2), clock=clock)
    ann = joined(hub, "ann", room="one")
    bob = joined(hub, "bob")
    send(hub, bob, type="room", room="two")
    assert bob.last()["code"] == ErrorCode.TOO_MANY_ROOMS
    assert hub.members("lobby") == ["bob"]  # a refused move changes nothing
    send(hub, bob, type="room", room="one")
    assert bob.last()["type"] == "welcome"
    newcomer = FakeMember("new")
    hub.connect(newcomer)
    send(hub, newcomer, type="join", nick="new", room="three")
    assert newcomer.last()["code"] == ErrorCode.TOO_MANY_ROOMS
    assert ann.closed is None


# ------------------------------------------------------------------- leaving


def test_disconnect_tells_the_room_once(hub: ChatHub) -> None:
    ann, bob = joined(hub, "ann"), joined(hub, "bob")
    ann.take()
    hub.disconnect(bob)
    hub.disconnect(bob)
    assert ann.sent == [{"type": "left", "room": "lobby", "nick": "bob", "reason": "quit", "ts": 1700000000.0}]
    assert hub.client_count == 1
    hub.receive(bob, '{"type":"say","text":"ghost"}')  # late frames are ignored
    assert ann.texts() == []


def test_unjoined_disconnect_is_silent(hub: ChatHub) -> None:
    ann = joined(hub, "ann")
    lurker = FakeMember("lurker")
    hub.connect(lurker)
    hub.disconnect(lurker)
    assert ann.sent == [] and hub.client_count == 1


# -------------------------------------------------------------------- limits


def test_oversized_text_is_refused(hub: ChatHub) -> None:
    ann, bob = joined(hub, "ann"), joined(hub, "bob")
    send(hub, ann, type="say", text="x" * 4097)
    assert ann.last()["code"] == ErrorCode.TOO_LONG
    assert bob.texts() == []
    send(hub, ann, type="say", text="x" * 4096)
    assert bob.texts() == ["x" * 4096]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", ErrorCode.INVALID_JSON),
        (b"\xc3\x28", ErrorCode.INVALID_JSON),
        ('{"type":"teleport"}', ErrorCode.UNKNOWN_TYPE),
        ('{"type":"say","text":"/teleport"}', ErrorCode.UNKNOWN_COMMAND),
    ],
)
def test_bad_messages_get_an_error_and_the_member_stays(hub: ChatHub, raw: str | bytes, code: ErrorCode) -> None:
    ann = joined(hub, "ann")
    hub.receive(ann, raw)
    assert ann.last()["type"] == "error" and ann.last()["code"] == code
    assert ann.closed is None
    send(hub, ann, type="say", text="still here")
    assert ann.texts() == ["still here"]
    assert hub.stats.errors == 1


def test_rate_limit_warns_then_disconnects(hub: ChatHub, clock: FakeClock) -> None:
    flooder, bob = joined(hub, "flooder"), joined(hub, "bob")
    flooder.take()
    for number in range(hub.limits.burst - 1):  # the join took the first token
        send(hub, flooder, type="say", text=str(number))
    assert len(flooder.texts()) == hub.limits.burst - 1
    send(hub, flooder, type="say", text="one too many")
    assert flooder.last()["code"] == ErrorCode.RATE_LIMITED
    assert flooder.closed is None
    send(hub, flooder, type="say", text="and another")
    assert flooder.closed is CloseReason.FLOODING
    assert flooder.last()["code"] == ErrorCode.RATE_LIMITED
    assert "one too many" not in bob.texts() and "and another" not in bob.texts()
    assert bob.last() == {"type": "left", "room": "lobby", "nick": "flooder", "reason": "flooding", "ts": 1700000000.0}
    assert hub.stats.flood_dropped == 1


def test_slowing_down_after_the_warning_is_forgiven(hub: ChatHub, clock: FakeClock) -> None:
    ann = joined(hub, "ann")
    for number in range(hub.limits.burst):  # with the join, one over the burst
        send(hub, ann, type="say", text=str(number))
    assert ann.last()["code"] == ErrorCode.RATE_LIMITED
    clock.advance(1 / hub.limits.rate)  # one token back
    send(hub, ann, type="say", text="calm")
    assert ann.texts()[-1] == "calm"
    send(hub, ann, type="say", text="too quick again")
    assert ann.last()["code"] == ErrorCode.RATE_LIMITED and ann.closed is None


def test_steady_typing_within_the_rate_is_never_limited(hub: ChatHub, clock: FakeClock) -> None:
    ann = joined(hub, "ann")
    for number in range(200):
        send(hub, ann, type="say", text=str(number))
        clock.advance(1 / hub.limits.rate)
    assert len(ann.texts()) == 200
    assert ErrorCode.RATE_LIMITED not in [m.get("code") for m in ann.sent]


def test_invalid_messages_cost_tokens_too(hub: ChatHub) -> None:
    ann = joined(hub, "ann")
    for _ in range(hub.limits.burst + 2):
        hub.receive(ann, "garbage")
    assert ann.closed is CloseReason.FLOODING


def test_max_clients(clock: FakeClock) -> None:
    hub = ChatHub(ChatLimits(max_clients=2), clock=clock)
    first, second = FakeMember("1"), FakeMember("2")
    assert hub.connect(first) and hub.connect(second)
    third = FakeMember("3")
    assert not hub.connect(third)
    assert third.sent[-1]["code"] == ErrorCode.SERVER_FULL
    assert third.closed is CloseReason.SERVER_FULL
    assert hub.stats.refused_full == 1
    hub.disconnect(first)
    assert hub.connect(FakeMember("4"))


def test_connecting_the_same_member_twice_is_a_bug(hub: ChatHub) -> None:
    member = FakeMember("m")
    hub.connect(member)
    with pytest.raises(ValueError):
        hub.connect(member)


# -------------------------------------------------------------- slow members


def test_slow_member_is_skipped_and_disconnected(hub: ChatHub, caplog: pytest.LogCaptureFixture) -> None:
    ann, slow, carol = joined(hub, "ann"), joined(hub, "slow"), joined(hub, "carol")
    ann.take()
    carol.take()
    slow.full = True
    with caplog.at_level(logging.WARNING, logger="netkit.chat"):
        send(hub, ann, type="say", text="hello")
    assert ann.texts() == ["hello"] and carol.texts() == ["hello"]
    assert slow.closed is CloseReason.SLOW
    assert hub.stats.slow_dropped == 1
    assert hub.members("lobby") == ["ann", "carol"]
    left = {"type": "left", "room": "lobby", "nick": "slow", "reason": str(CloseReason.SLOW), "ts": 1700000000.0}
    assert ann.last() == left and carol.last() == left
    assert any("event=slow_client_dropped" in r.getMessage() and "nick=slow" in r.getMessage() for r in caplog.records)
    send(hub, ann, type="say", text="after")
    assert carol.texts() == ["hello", "after"]


def test_several_slow_members_in_one_broadcast(hub: ChatHub) -> None:
    ann = joined(hub, "ann")
    slow = [joined(hub, f"slow{i}") for i in range(3)]
    for member in slow:
        member.full = True
    send(hub, ann, type="say", text="hi")
    assert all(member.closed is CloseReason.SLOW for member in slow)
    assert hub.members("lobby") == ["ann"]
    assert hub.stats.slow_dropped == 3


def test_a_member_slow_on_a_direct_reply_is_dropped(hub: ChatHub) -> None:
    ann = joined(hub, "ann")
    ann.full = True
    send(hub, ann, type="who")
    assert ann.closed is CloseReason.SLOW
    assert hub.client_count == 0


# ------------------------------------------------------------------- timeouts


def test_join_timeout(hub: ChatHub, clock: FakeClock) -> None:
    lurker = FakeMember("lurker")
    hub.connect(lurker)
    ann = joined(hub, "ann")
    clock.advance(hub.limits.join_timeout - 0.5)
    hub.sweep()
    assert lurker.closed is None
    clock.advance(0.5)
    hub.sweep()
    assert lurker.closed is CloseReason.JOIN_TIMEOUT
    assert lurker.last()["code"] == ErrorCode.JOIN_TIMEOUT
    assert ann.closed is None  # joined members have no join timeout
    assert hub.stats.timed_out == 1


def test_keepalive_pings_then_drops_a_silent_member(hub: ChatHub, clock: FakeClock) -> None:
    member = FakeMember("tcp", hub)
    hub.connect(member, keepalive=True)
    send(hub, member, type="join", nick="quiet")
    member.take()
    clock.advance(hub.limits.ping_interval)
    hub.sweep()
    assert member.take() == [{"type": "ping"}]
    hub.sweep()
    assert member.sent == []  # one ping per silence
    clock.advance(hub.limits.ping_timeout)
    hub.sweep()
    assert member.closed is CloseReason.KEEPALIVE_TIMEOUT


def test_keepalive_answered_keeps_the_member(hub: ChatHub, clock: FakeClock) -> None:
    member = FakeMember("tcp")
    hub.connect(member, keepalive=True)
    send(hub, member, type="join", nick="alive")
    for _ in range(5):
        clock.advance(hub.limits.ping_interval)
        hub.sweep()
        assert member.last() == {"type": "ping"}
        clock.advance(hub.limits.ping_timeout - 1)
        send(hub, member, type="pong")
        hub.sweep()
    assert member.closed is None


def test_members_without_keepalive_are_never_pinged(hub: ChatHub, clock: FakeClock) -> None:
    ann = joined(hub, "ann")
    clock.advance(3600)
    hub.sweep()
    assert ann.sent == [] and ann.closed is None


# ------------------------------------------------------------------ shutdown


def test_shutdown_closes_everyone_without_notices(hub: ChatHub) -> None:
    members = [joined(hub, f"user{i}") for i in range(3)]
    lurker = FakeMember("lurker", hub)
    hub.connect(lurker)
    for member in members:
        member.take()
    hub.shutdown()
    assert all(member.closed is CloseReason.SHUTDOWN for member in [*members, lurker])
    assert all(member.sent == [] for member in members)
    assert hub.client_count == 0 and hub.members("lobby") == []


def test_log_lines_are_structured(hub: ChatHub, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="netkit.chat"):
        ann = joined(hub, "ann")
        hub.receive(ann, "nope")
        hub.disconnect(ann)
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0] == "event=join nick=ann door=test peer=ann room=lobby"
    assert lines[1].startswith("event=error nick=ann door=test peer=ann code=invalid_json message=")
    assert lines[2] == "event=leave nick=ann door=test peer=ann room=lobby reason=quit"


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        ChatLimits(max_clients=0)
    with pytest.raises(ValueError):
        ChatLimits(rate=0)
    with pytest.raises(ValueError):
        ChatLimits(address_rate=0)
    with pytest.raises(ValueError):
        ChatLimits(room_byte_burst=0)
    assert ChatLimits().max_message_bytes > 6 * ChatLimits().max_text_bytes


# ------------------------------------------------------- groups of senders


def member_from(hub: ChatHub, name: str, address: str | None) -> FakeMember:
    """A member connected from ``address`` and joined as ``name``."""
    member = FakeMember(name, hub)
    assert hub.connect(member, address=address)
    send(hub, member, type="join", nick=name)
    assert member.last()["type"] == "welcome", member.sent
    member.take()
    return member


def encoded_size(message: dict[str, Any]) -> int:
    return len(protocol.encode(message).encode("utf-8"))


def test_a_room_refuses_messages_over_its_byte_budget(clock: FakeClock) -> None:
    hub = ChatHub(ChatLimits(), clock=clock, wall_clock=lambda: 1700000000.0)
    reader = member_from(hub, "reader", None)
    senders = [member_from(hub, f"s{number}", None) for number in range(5)]
    reader.take()
    text = "x" * hub.limits.max_text_bytes
    size = encoded_size(protocol.chat_message(1, "lobby", "s0", text, 1700000000.0))
    fits = hub.limits.room_byte_burst // size
    for sender in senders:
        for _ in range(hub.limits.burst - 1):  # each within its own limit
            send(hub, sender, type="say", text=text)
    assert len(reader.texts()) == fits
    refused = [m for sender in senders for m in sender.sent if m["type"] == "error"]
    assert len(refused) == 5 * (hub.limits.burst - 1) - fits
    assert {m["code"] for m in refused} == {ErrorCode.ROOM_BUSY}
    assert "#lobby is busy" in refused[0]["message"] and "try again in" in refused[0]["message"]
    assert all(sender.closed is None for sender in senders) and reader.closed is None
    assert hub.stats.room_busy == len(refused) and hub.stats.messages == fits

    # The budget comes back at room_byte_rate: a message's worth, one more message.
    clock.advance(size / hub.limits.room_byte_rate)
    send(hub, senders[0], type="who")  # not a broadcast: costs the room nothing
    clock.advance(1 / hub.limits.rate)
    send(hub, senders[1], type="say", text=text)
    assert len(reader.texts()) == fits + 1


def test_a_room_budget_counts_notices_but_never_refuses_them(clock: FakeClock) -> None:
    limits = ChatLimits(room_byte_rate=100, room_byte_burst=1000)
    hub = ChatHub(limits, clock=clock, wall_clock=lambda: 1700000000.0)
    first = member_from(hub, "first", None)
    others = [member_from(hub, f"member{number}", None) for number in range(20)]  # 20 joined notices
    assert len([m for m in first.sent if m["type"] == "joined"]) == 20  # none was refused
    send(hub, others[0], type="say", text="hi")  # they spent the budget
    assert others[0].last()["code"] == ErrorCode.ROOM_BUSY
    clock.advance(limits.room_byte_burst / limits.room_byte_rate)
    send(hub, others[0], type="say", text="hi")
    assert others[0].texts() == ["hi"]


def test_a_message_larger_than_the_room_burst_passes_a_full_budget(clock: FakeClock) -> None:
    limits = ChatLimits(room_byte_rate=1000, room_byte_burst=1000)
    hub = ChatHub(limits, clock=clock, wall_clock=lambda: 1700000000.0)
    ann = member_from(hub, "ann", None)
    send(hub, ann, type="say", text="x" * 4000)  # larger than the burst: it could never fit
    assert ann.texts() == ["x" * 4000]
    send(hub, ann, type="say", text="small")  # the debt is paid back first
    assert ann.last()["code"] == ErrorCode.ROOM_BUSY
    assert limits.room_burst_bytes == protocol.max_chat_message_bytes(limits.max_text_bytes)


def test_connections_per_address_are_limited(clock: FakeClock) -> None:
    hub = ChatHub(ChatLimits(max_clients_per_address=2), clock=clock)
    first, second = FakeMember("1", hub), FakeMember("2", hub)
    assert hub.connect(first, address="192.0.2.1") and hub.connect(second, address="192.0.2.1")
    third = FakeMember("3", hub)
    assert not hub.connect(third, address="192.0.2.1")
    assert third.closed is CloseReason.TOO_MANY_CONNECTIONS
    assert third.sent[-1]["code"] == ErrorCode.TOO_MANY_CONNECTIONS
    assert "from your address" in third.sent[-1]["message"]
    assert hub.stats.refused_address == 1
    assert hub.connect(FakeMember("elsewhere", hub), address="192.0.2.2")
    assert hub.connect(FakeMember("no address", hub))  # a door that knows none: no per-address limit
    hub.disconnect(first)
    assert hub.connect(FakeMember("4", hub), address="192.0.2.1")


def test_an_ipv6_slash_64_counts_as_one_address(clock: FakeClock) -> None:
    hub = ChatHub(ChatLimits(max_clients_per_address=2), clock=clock)
    assert hub.connect(FakeMember("a", hub), address="2001:db8:1:2::1")
    assert hub.connect(FakeMember("b", hub), address="2001:db8:1:2:ffff::9")
    assert not hub.connect(FakeMember("c", hub), address="2001:db8:1:2::abcd")
    assert hub.connect(FakeMember("d", hub), address="2001:db8:1:3::1")  # another /64
    assert hub.connect(FakeMember("e", hub), address="::ffff:192.0.2.1")
    assert hub.connect(FakeMember("f", hub), address="192.0.2.1")
    assert not hub.connect(FakeMember("g", hub), address="192.0.2.1")  # the mapped one counted


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("2001:db8::1", "2001:db8::/64"),
        ("2001:DB8:0:0:1::1", "2001:db8::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("/run/chat.sock", "/run/chat.sock"),
    ],
)
def test_address_key(host: str, key: str) -> None:
    assert address_key(host) == key


def test_an_address_shares_one_message_rate(clock: FakeClock) -> None:
    limits = ChatLimits(address_rate=1.0, address_burst=3)
    hub = ChatHub(limits, clock=clock, wall_clock=lambda: 1700000000.0)
    ann = member_from(hub, "ann", "192.0.2.1")
    bob = member_from(hub, "bob", "192.0.2.1")  # the two joins took two of the three tokens
    carol = member_from(hub, "carol", "192.0.2.9")
    send(hub, ann, type="say", text="one")
    for _ in range(5):  # each within its own limit, not the address's: refused, never closed
        send(hub, bob, type="say", text="two")
        assert bob.last()["code"] == ErrorCode.RATE_LIMITED
        assert "your address" in bob.last()["message"]
    assert bob.closed is None and bob.texts() == ["one"] and hub.stats.address_limited == 5
    send(hub, carol, type="say", text="elsewhere")  # another address is not affected
    assert carol.texts()[-1] == "elsewhere"
    clock.advance(1 / limits.address_rate)
    send(hub, bob, type="say", text="later")
    assert bob.texts() == ["one", "elsewhere", "later"]


def test_reconnecting_does_not_refill_an_address(clock: FakeClock) -> None:
    limits = ChatLimits(address_rate=1.0, address_burst=2)
    hub = ChatHub(limits, clock=clock)
    ann = member_from(hub, "ann", "192.0.2.1")
    send(hub, ann, type="say", text="spent")
    hub.disconnect(ann)
    hub.sweep()
    assert hub.address_count == 1  # still remembered: its bucket is not full
    again = FakeMember("again", hub)
    assert hub.connect(again, address="192.0.2.1")
    send(hub, again, type="join", nick="ann")
    assert again.last()["code"] == ErrorCode.RATE_LIMITED
    hub.disconnect(again)
    clock.advance(limits.address_burst / limits.address_rate)
    hub.sweep()
    assert hub.address_count == 0  # forgotten once idle and full


def test_a_refused_door_message_costs_a_token_and_gets_its_error(hub: ChatHub) -> None:
    ann = joined(hub, "ann")
    hub.reject(ann, protocol.binary_message_error())
    assert ann.last()["code"] == ErrorCode.INVALID_MESSAGE
    assert "text messages" in ann.last()["message"]
    for _ in range(hub.limits.burst):
        hub.reject(ann, protocol.binary_message_error())
    assert ann.closed is CloseReason.FLOODING


def test_size_bounds_hold_for_the_largest_messages() -> None:
    limits = ChatLimits()
    # Every character of this text is escaped to two bytes in JSON.
    text = '"\\\t\n' * (limits.max_text_bytes // 4)
    assert protocol.utf8_size(text) == limits.max_text_bytes
    nick, room = "n" * protocol.MAX_NICK_LENGTH, "r" * protocol.MAX_ROOM_LENGTH
    largest = protocol.chat_message(2**64, room, nick, text, -1.2345678901234567e-300)
    assert encoded_size(largest) <= protocol.max_chat_message_bytes(limits.max_text_bytes)
    members = [f"{number:0{protocol.MAX_NICK_LENGTH}d}" for number in range(limits.max_clients)]
    welcome = protocol.welcome(nick, room, members, [largest] * limits.history_size, 10**18)
    assert encoded_size(welcome) <= limits.max_welcome_bytes
    assert encoded_size(protocol.who(room, members)) <= protocol.max_who_bytes(limits.max_clients)


def test_the_send_buffer_limit_follows_from_the_other_limits() -> None:
    limits = ChatLimits()
    assert limits.send_buffer_limit == limits.min_send_buffer_limit
    assert limits.min_send_buffer_limit == (
        limits.max_welcome_bytes + limits.room_byte_burst + protocol.max_who_bytes(limits.max_clients)
    )
    bigger = ChatLimits(max_text_bytes=16384)  # a larger text makes room for itself
    assert bigger.send_buffer_limit == bigger.min_send_buffer_limit > limits.send_buffer_limit
    assert ChatLimits(send_buffer_limit=10**7).send_buffer_limit == 10**7
    with pytest.raises(ValueError, match="send_buffer_limit=65536 is below"):
        ChatLimits(send_buffer_limit=64 * 1024)
