"""The chat's Origin policy, without sockets: which pages may open its WebSocket."""

from __future__ import annotations

import pytest

from netkit.chat.origins import OriginPolicy, parse_origin


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("http://127.0.0.1:8765", ("http", "127.0.0.1", 8765)),
        ("http://example.com", ("http", "example.com", 80)),
        ("https://Chat.Example.COM", ("https", "chat.example.com", 443)),
        ("HTTPS://chat.example.com:8443", ("https", "chat.example.com", 8443)),
        ("http://[::1]:8765", ("http", "[::1]", 8765)),
        ("http://[::1]", ("http", "[::1]", 80)),
        ("null", None),
        ("file://", None),
        ("ftp://example.com", None),
        ("http://", None),
        ("http://example.com/", None),
        ("http://example.com/page", None),
        ("http://user@example.com", None),
        ("http://example.com:", None),
        ("http://example.com:0", None),
        ("http://example.com:65536", None),
        ("http://example.com:80x", None),
        ("http://example.com:٨٠", None),  # digits, but not ASCII ones
        ("http://[::1", None),
        ("http://[::1]x", None),
        ("example.com", None),
    ],
)
def test_parse_origin(value: str, parsed: tuple[str, str, int] | None) -> None:
    assert parse_origin(value) == parsed


def test_the_pages_own_origin_is_its_host_and_port() -> None:
    policy = OriginPolicy()
    assert policy.allows(["http://127.0.0.1:8765"], "127.0.0.1:8765")
    assert policy.allows(["https://chat.example.com"], "chat.example.com")  # behind a TLS proxy
    assert policy.allows(["http://chat.example.com"], "Chat.Example.com:80")
    assert policy.allows(["http://[::1]:8765"], "[::1]:8765")
    assert not policy.allows(["http://127.0.0.1:8766"], "127.0.0.1:8765")
    assert not policy.allows(["http://localhost:8765"], "127.0.0.1:8765")
    assert not policy.allows(["https://chat.example.com"], "chat.example.com:8443")
    assert not policy.allows(["http://127.0.0.1:8765"], None)
    assert not policy.allows(["http://127.0.0.1:8765"], "127.0.0.1:8765/x")


def test_no_origin_is_not_a_browser_and_is_accepted() -> None:
    assert OriginPolicy().allows([], "127.0.0.1:8765")
    assert OriginPolicy().allows([], None)


def test_listed_origins_and_any() -> None:
    policy = OriginPolicy(["https://chat.example.com", "http://localhost:3000"])
    assert policy.allows(["https://chat.example.com:443"], "127.0.0.1:8765")
    assert policy.allows(["http://LOCALHOST:3000"], "127.0.0.1:8765")
    assert not policy.allows(["http://localhost:3001"], "127.0.0.1:8765")
    assert not policy.allows(["null"], "127.0.0.1:8765")
    anything = OriginPolicy(["*"])
    assert anything.allows(["https://anywhere.example"], "127.0.0.1:8765")
    assert not anything.allows(["https://a.example", "https://b.example"], "127.0.0.1:8765")  # two are never believed


@pytest.mark.parametrize("value", ["chat.example.com", "https://chat.example.com/", "null", ""])
def test_a_listed_value_that_is_no_origin_is_refused_up_front(value: str) -> None:
    with pytest.raises(ValueError, match="is not an origin"):
        OriginPolicy([value])
