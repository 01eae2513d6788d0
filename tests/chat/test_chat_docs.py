"""docs/chat.md states the chat's limits: its numbers must be the code's."""

from __future__ import annotations

from pathlib import Path

from netkit.chat import ChatLimits
from netkit.chat.protocol import max_chat_message_bytes, max_who_bytes
from netkit.websocket import Options

CHAT_DOC = (Path(__file__).resolve().parents[2] / "docs" / "chat.md").read_text(encoding="utf-8")


def kib(size: int) -> str:
    assert size % 1024 == 0, size
    return f"{size // 1024} KiB"


def test_the_limits_table_shows_the_defaults() -> None:
    limits = ChatLimits()
    rows = [
        f"| `max_text_bytes` | {limits.max_text_bytes} |",
        f"6 × that + 1 KiB = {limits.max_message_bytes}",
        f"| `rate`, `burst` | {limits.rate:g} messages/s, bursts of {limits.burst} |",
        f"| `address_rate`, `address_burst` | {limits.address_rate:g} messages/s, bursts of {limits.address_burst} |",
        f"| `max_clients_per_address` | {limits.max_clients_per_address} |",
        f"| `room_byte_rate`, `room_byte_burst` | {kib(limits.room_byte_rate)}/s, {kib(limits.room_byte_burst)} |",
        f"| `max_clients` | {limits.max_clients} |",
        f"| `max_rooms` | {limits.max_rooms} |",
        f"| `history_size` | {limits.history_size} |",
        f"| `join_timeout` | {limits.join_timeout:g} s |",
        f"| `ping_interval`, `ping_timeout` | {limits.ping_interval:g} s, {limits.ping_timeout:g} s |",
        f"| `send_buffer_limit` | {limits.send_buffer_limit} bytes (computed) |",
    ]
    missing = [row for row in rows if row not in CHAT_DOC]
    assert not missing


def test_the_send_buffer_arithmetic_is_the_codes() -> None:
    limits = ChatLimits()
    welcome, burst, who = limits.max_welcome_bytes, limits.room_burst_bytes, max_who_bytes(limits.max_clients)
    assert f"{welcome:,} + {burst:,} + {who:,} = {limits.send_buffer_limit:,} bytes" in CHAT_DOC
    assert f"at most {max_chat_message_bytes(limits.max_text_bytes)} bytes of JSON" in CHAT_DOC
    assert f"the room's burst, {limits.room_byte_burst:,} bytes" in CHAT_DOC
    assert f"the answer to its own `/who`: {who:,} bytes" in CHAT_DOC
    assert f"{welcome:,} bytes (`ChatLimits.max_welcome_bytes`)" in CHAT_DOC
    assert f"limit={limits.send_buffer_limit}" in CHAT_DOC  # the log line shown


def test_the_websocket_timeouts_shown_are_the_defaults() -> None:
    options = Options()
    assert options.open_timeout == options.close_timeout
    assert f"opening and closing handshakes ({options.open_timeout:g} each)" in CHAT_DOC
