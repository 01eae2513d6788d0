"""The chat server's command line (netkit/chat/cli.py): every option reaches
the server, and bad values are usage errors."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from netkit.chat import ChatLimits
from netkit.chat.cli import add_arguments, limits_from_arguments, websocket_options_from_arguments


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="chat")
    add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults_are_the_servers_own() -> None:
    args = parse()
    assert limits_from_arguments(args) == ChatLimits()
    assert websocket_options_from_arguments(args) == {"open_timeout": 10.0, "close_timeout": 10.0}
    assert args.origins == []


def test_every_option_reaches_the_server() -> None:
    args = parse(
        "--max-clients", "50",
        "--max-clients-per-address", "200",
        "--address-rate", "40",
        "--address-burst", "80",
        "--max-text-bytes", "1000",
        "--join-timeout", "2.5",
        "--open-timeout", "3",
        "--close-timeout", "4",
        "--max-message-size", "7000",
        "--origin", "https://chat.example.com",
        "--origin", "http://localhost:3000",
    )  # fmt: skip
    assert limits_from_arguments(args) == ChatLimits(
        max_clients=50,
        max_clients_per_address=200,
        address_rate=40.0,
        address_burst=80,
        max_text_bytes=1000,
        join_timeout=2.5,
    )
    assert websocket_options_from_arguments(args) == {"open_timeout": 3.0, "close_timeout": 4.0, "max_message_size": 7000}
    assert args.origins == ["https://chat.example.com", "http://localhost:3000"]
    assert parse("--origin", "*").origins == ["*"]


def test_every_limit_but_the_computed_one_has_an_option() -> None:
    fields = [field.name for field in dataclasses.fields(ChatLimits) if field.name != "send_buffer_limit"]
    argv: list[str] = []
    for number, name in enumerate(fields, 2):
        argv += [f"--{name.replace('_', '-')}", str(number * 1000)]  # each its own value, all valid
    limits = limits_from_arguments(parse(*argv))
    assert [getattr(limits, name) for name in fields] == [number * 1000 for number in range(2, len(fields) + 2)]
    assert limits.send_buffer_limit == limits.min_send_buffer_limit


@pytest.mark.parametrize(
    "argv",
    [
        ["--origin", "chat.example.com"],
        ["--origin", "https://chat.example.com/"],
        ["--join-timeout", "0"],
        ["--open-timeout", "-1"],
        ["--close-timeout", "nan"],
        ["--address-rate", "inf"],
        ["--max-message-size", "0"],
        ["--max-clients-per-address", "0"],
        ["--rate", "0"],
        ["--room-byte-rate", "1.5"],
    ],
)
def test_bad_values_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(*argv)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err
