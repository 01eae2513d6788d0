"""The chat's JSON schema: parsing and validating client messages, building server ones."""

from __future__ import annotations

import json

import pytest

from netkit.chat import protocol
from netkit.chat.protocol import ChatError, ErrorCode

LIMITS = {"max_message_bytes": 1000, "max_text_bytes": 100}


def parse(raw: str | bytes) -> protocol.ClientMessage:
    return protocol.parse_client_message(raw, **LIMITS)


def refused(raw: str | bytes) -> ErrorCode:
    with pytest.raises(ChatError) as caught:
        parse(raw)
    assert caught.value.message  # always a sentence for the human
    return caught.value.code


# ------------------------------------------------------------- every client type


def test_join_with_and_without_room() -> None:
    assert parse('{"type":"join","nick":"ann","room":"Python"}') == protocol.Join("ann", "python")
    assert parse('{"type":"join","nick":"ann"}') == protocol.Join("ann", protocol.DEFAULT_ROOM)


def test_say_who_room_help_ping_pong() -> None:
    assert parse('{"type":"say","text":"hi there"}') == protocol.Say("hi there")
    assert parse('{"type":"who"}') == protocol.Who()
    assert parse('{"type":"room","room":"#Rust"}') == protocol.SwitchRoom("rust")
    assert parse('{"type":"help"}') == protocol.Help()
    assert parse('{"type":"ping"}') == protocol.Ping()
    assert parse('{"type":"pong"}') == protocol.Pong()


def test_bytes_are_utf8_json() -> None:
    assert parse('{"type":"say","text":"héllo ✓"}'.encode()) == protocol.Say("héllo ✓")


def test_unknown_fields_are_ignored() -> None:
    assert parse('{"type":"who","extra":[1,2]}') == protocol.Who()


# ------------------------------------------------------------------ commands


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/who", protocol.Who()),
        ("/WHO", protocol.Who()),
        ("/help", protocol.Help()),
        ("/join python", protocol.SwitchRoom("python")),
        ("/join   #Python  ", protocol.SwitchRoom("python")),
        ("//who", protocol.Say("/who")),
        ("hello /who", protocol.Say("hello /who")),
    ],
)
def test_commands_inside_say(text: str, expected: protocol.ClientMessage) -> None:
    assert parse(json.dumps({"type": "say", "text": text})) == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("/dance", ErrorCode.UNKNOWN_COMMAND),
        ("/who is there", ErrorCode.UNKNOWN_COMMAND),
        ("/join", ErrorCode.INVALID_ROOM),
        ("/join bad room!", ErrorCode.INVALID_ROOM),
    ],
)
def test_bad_commands(text: str, code: ErrorCode) -> None:
    assert refused(json.dumps({"type": "say", "text": text})) == code


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"\xff\xfe", ErrorCode.INVALID_JSON),
        ("not json", ErrorCode.INVALID_JSON),
        ('{"type":"say"', ErrorCode.INVALID_JSON),
        ("[1, 2]", ErrorCode.INVALID_JSON),
        ('"say"', ErrorCode.INVALID_JSON),
        ("{}", ErrorCode.INVALID_MESSAGE),
        ('{"type": 3}', ErrorCode.INVALID_MESSAGE),
        ('{"type":"say"}', ErrorCode.INVALID_MESSAGE),
        ('{"type":"say","text":5}', ErrorCode.INVALID_MESSAGE),
        ('{"type":"dance"}', ErrorCode.UNKNOWN_TYPE),
        ('{"type":"say","text":"   "}', ErrorCode.INVALID_TEXT),
        ('{"type":"say","text":"\\u001b[2Jgotcha"}', ErrorCode.INVALID_TEXT),
        ('{"type":"say","text":"bell\\u0007"}', ErrorCode.INVALID_TEXT),
        ('{"type":"say","text":"c1\\u009b"}', ErrorCode.INVALID_TEXT),
        ('{"type":"say","text":"lone \\ud800"}', ErrorCode.INVALID_TEXT),
        ('{"type":"join"}', ErrorCode.INVALID_NICK),
        ('{"type":"join","nick":""}', ErrorCode.INVALID_NICK),
        ('{"type":"join","nick":"a b"}', ErrorCode.INVALID_NICK),
        ('{"type":"join","nick":"-dash"}', ErrorCode.INVALID_NICK),
        ('{"type":"join","nick":"аnn"}', ErrorCode.INVALID_NICK),  # Cyrillic а
        ('{"type":"join","nick":"ann","room":7}', ErrorCode.INVALID_ROOM),
        ('{"type":"room"}', ErrorCode.INVALID_ROOM),
        ('{"type":"room","room":"#"}', ErrorCode.INVALID_ROOM),
    ],
)
def test_invalid_messages_get_a_code(raw: str | bytes, code: ErrorCode) -> None:
    assert refused(raw) == code


def test_deeply_nested_json_is_refused_not_crashed() -> None:
    raw = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ChatError) as caught:
        protocol.parse_client_message(raw, max_message_bytes=10**6, max_text_bytes=100)
    assert caught.value.code == ErrorCode.INVALID_JSON


def test_tabs_and_newlines_are_text() -> None:
    assert parse('{"type":"say","text":"a\\tb\\nc"}') == protocol.Say("a\tb\nc")


def test_nick_and_room_length_limits() -> None:
    longest = "n" * protocol.MAX_NICK_LENGTH
    assert protocol.check_nick(longest) == longest
    with pytest.raises(ChatError):
        protocol.check_nick(longest + "n")
    room = "r" * protocol.MAX_ROOM_LENGTH
    assert protocol.normalize_room(room) == room
    with pytest.raises(ChatError):
        protocol.normalize_room(room + "r")


def test_text_limit_counts_utf8_bytes() -> None:
    assert parse(json.dumps({"type": "say", "text": "x" * 100})) == protocol.Say("x" * 100)
    assert refused(json.dumps({"type": "say", "text": "x" * 101})) == ErrorCode.TOO_LONG
    # 34 three-byte characters are 102 bytes though only 34 characters.
    assert refused(json.dumps({"type": "say", "text": "✓" * 34}, ensure_ascii=False)) == ErrorCode.TOO_LONG


def test_message_limit_is_checked_before_parsing() -> None:
    huge = '{"type":"who","pad":"' + "x" * 2000 + '"}'
    assert refused(huge) == ErrorCode.TOO_LONG
    assert refused(huge.encode()) == ErrorCode.TOO_LONG


# ------------------------------------------------------------ server messages


def test_server_messages_round_trip_through_decode() -> None:
    message = protocol.chat_message(7, "lobby", "ann", "héllo", 1700000000.5)
    built = [
        protocol.welcome("ann", "lobby", ["ann"], [message], 4096),
        message,
        protocol.joined("lobby", "bob", 1.0),
        protocol.left("lobby", "bob", "quit", 2.0),
        protocol.who("lobby", ["ann", "bob"]),
        protocol.info("hello"),
        protocol.error(ErrorCode.NICK_TAKEN, "taken"),
        protocol.ping(),
        protocol.pong(),
    ]
    for obj in built:
        text = protocol.encode(obj)
        assert "\n" not in text
        assert protocol.decode_server_message(text) == obj
        assert protocol.decode_server_message(text.encode()) == obj
    assert protocol.encode(message) == (
        '{"type":"message","id":7,"room":"lobby","nick":"ann","text":"héllo","ts":1700000000.5}'
    )
    assert protocol.error(ErrorCode.NICK_TAKEN, "taken") == {"type": "error", "code": "nick_taken", "message": "taken"}


@pytest.mark.parametrize("raw", ["[]", '{"code": 1}', '{"type": 1}', "nope"])
def test_decode_server_message_refuses_non_messages(raw: str) -> None:
    with pytest.raises(ValueError):
        protocol.decode_server_message(raw)
