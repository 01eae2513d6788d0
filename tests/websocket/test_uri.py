"""WebSocket URIs: schemes, default ports, IPv6, resource names and what is refused."""

import pytest

from netkit.errors import InvalidURI
from netkit.websocket.uri import WebSocketURI, parse_uri


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("ws://example.com", WebSocketURI(False, "example.com", 80, "/")),
        ("wss://example.com", WebSocketURI(True, "example.com", 443, "/")),
        ("WS://Example.COM:8080/Chat", WebSocketURI(False, "example.com", 8080, "/Chat")),
        ("wss://example.com:443/", WebSocketURI(True, "example.com", 443, "/")),
        ("ws://example.com/chat?room=1&x=%20", WebSocketURI(False, "example.com", 80, "/chat?room=1&x=%20")),
        ("ws://example.com?x", WebSocketURI(False, "example.com", 80, "/?x")),
        ("ws://example.com/?", WebSocketURI(False, "example.com", 80, "/?")),
        ("ws://example.com:/a", WebSocketURI(False, "example.com", 80, "/a")),
        ("ws://127.0.0.1:9000/", WebSocketURI(False, "127.0.0.1", 9000, "/")),
        ("ws://127.0.0.1:65535/", WebSocketURI(False, "127.0.0.1", 65535, "/")),
        ("ws://127.0.0.1:00081/", WebSocketURI(False, "127.0.0.1", 81, "/")),
        ("ws://[::1]:8080/chat?x=1", WebSocketURI(False, "::1", 8080, "/chat?x=1")),
        ("wss://[2001:db8::7]/", WebSocketURI(True, "2001:db8::7", 443, "/")),
        ("ws://[fe80::1%25eth0]:81/", WebSocketURI(False, "fe80::1%eth0", 81, "/")),
        ("ws://bücher.example/café?q=é", WebSocketURI(False, "xn--bcher-kva.example", 80, "/caf%C3%A9?q=%C3%A9")),
        ("ws://h/a\"b<c>", WebSocketURI(False, "h", 80, "/a%22b%3Cc%3E")),
    ],
)
def test_parse(uri, expected):
    assert parse_uri(uri) == expected


@pytest.mark.parametrize(
    "uri, host_header",
    [
        ("ws://example.com/", "example.com"),
        ("ws://example.com:80/", "example.com"),
        ("ws://example.com:443/", "example.com:443"),
        ("wss://example.com:443/", "example.com"),
        ("wss://example.com:80/", "example.com:80"),
        ("ws://[::1]/", "[::1]"),
        ("ws://[::1]:8080/", "[::1]:8080"),
        ("ws://[fe80::1%25eth0]:8080/", "[fe80::1]:8080"),
    ],
)
def test_host_header(uri, host_header):
    assert parse_uri(uri).host_header == host_header


def test_str_round_trips():
    for uri in ["ws://example.com/", "wss://[::1]:8443/a?b", "ws://h:81/x?y=z"]:
        assert str(parse_uri(uri)) == uri
        assert parse_uri(str(parse_uri(uri))) == parse_uri(uri)


def test_scheme_property():
    assert parse_uri("wss://h").scheme == "wss"
    assert parse_uri("ws://h").scheme == "ws"


@pytest.mark.parametrize(
    "uri, why",
    [
        ("http://example.com/", "scheme"),
        ("example.com", "scheme"),
        ("ws:/path", "no host"),
        ("ws://", "no host"),
        ("ws://:80/", "no host"),
        ("ws://user:pass@example.com/", "user info"),
        ("ws://user@example.com/", "user info"),
        ("ws://example.com/#frag", "fragment"),
        ("ws://example.com/#", "fragment"),
        ("ws://example.com:99999/", "port"),
        ("ws://example.com:65536/", "port"),
        ("ws://example.com:http/", "port"),
        ("ws://example.com:+80/", "port"),
        ("ws://example.com:8_0/", "port"),
        ("ws://example.com:\u0668\u0660/", "port"),  # ARABIC-INDIC digits: int() reads 80
        ("ws://example.com:\xb2/", "port"),  # "²": isdigit() but no int()
        ("ws://example.com:000080/", "port"),  # more digits than any port has
        pytest.param("ws://example.com:" + "9" * 5000 + "/", "port", id="5000-digit port"),
        ("ws://example.com:1:2/", "port"),
        ("ws://[::1]x:80/", "port"),
        ("ws://example.com:0/", "port 0"),
        ("ws://[::1/", "valid URI"),
        ("ws://[not-ipv6]/", "IPv6"),
        ("ws://example.com/a b", "whitespace"),
        ("ws://example.com/a\r\nHost: evil", "whitespace"),
        ("ws://exa\tmple.com/", "whitespace"),
        ("ws://" + "a" * 64 + ".ü/", "IDNA"),
    ],
)
def test_invalid(uri, why):
    with pytest.raises(InvalidURI, match=why):
        parse_uri(uri)


def test_invalid_uri_is_a_value_error():
    with pytest.raises(ValueError):
        parse_uri("ftp://x/")
