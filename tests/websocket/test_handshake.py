"""Opening handshake: the RFC's example, every server check one at a time, client checks."""

import base64

import pytest

from netkit.errors import HandshakeError, HTTPError, InvalidStateError
from netkit.http import Headers, Request, RequestParser, Response, ResponseParser
from netkit.websocket.handshake import (
    ClientHandshake,
    ServerHandshake,
    accept_key,
    generate_key,
)

# RFC 6455 §1.3 and §4.2.2: the example key and its accept value.
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_accept_key_of_the_rfc_example():
    assert accept_key(RFC_KEY) == RFC_ACCEPT


def test_generated_keys_are_fresh_16_byte_nonces():
    keys = {generate_key() for _ in range(50)}
    assert len(keys) == 50
    for key in keys:
        assert len(base64.b64decode(key, validate=True)) == 16


# Server


def opening_request(**changes):
    """A valid opening request; ``changes`` maps a field name to a new value,
    ``None`` to drop it, or a list for several lines."""
    fields = {
        "Host": "server.example.com",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": RFC_KEY,
        "Sec-WebSocket-Version": "13",
        "Origin": "http://example.com",
    }
    method = changes.pop("method", "GET")
    version = changes.pop("version", (1, 1))
    fields.update({name.replace("_", "-"): value for name, value in changes.items()})
    headers = Headers()
    for name, value in fields.items():
        if value is None:
            continue
        for one in value if isinstance(value, list) else [value]:
            headers.add(name, one)
    return Request(method, "/chat", version, headers)


def test_server_accepts_a_valid_request():
    outcome = ServerHandshake().respond(opening_request())
    assert outcome.accepted and outcome.error is None and outcome.subprotocol is None
    assert outcome.to_bytes() == (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"\r\n"
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"Upgrade": "WebSocket"},
        {"Upgrade": "h2c, websocket"},
        {"Connection": "keep-alive, Upgrade"},
        {"Connection": ["keep-alive", "upgrade"]},
        {"version": (1, 2)},
        {"Origin": None},
        {"Sec-WebSocket-Key": "AAAAAAAAAAAAAAAAAAAAAA=="},
    ],
)
def test_server_accepts_variants(changes):
    assert ServerHandshake().respond(opening_request(**changes)).accepted


@pytest.mark.parametrize(
    "changes, status, field, why",
    [
        ({"method": "POST"}, 405, ("Allow", "GET"), "GET"),
        ({"method": "get"}, 405, ("Allow", "GET"), "GET"),
        ({"version": (1, 0)}, 400, None, "HTTP/1.1"),
        ({"Host": None}, 400, None, "Host"),
        ({"Host": ""}, 400, None, "Host"),
        ({"Host": ["a", "b"]}, 400, None, "Host"),
        ({"Upgrade": None}, 426, ("Upgrade", "websocket"), "Upgrade"),
        ({"Upgrade": "h2c"}, 426, ("Upgrade", "websocket"), "Upgrade"),
        ({"Upgrade": "websockets"}, 426, ("Upgrade", "websocket"), "Upgrade"),
        ({"Connection": None}, 426, ("Upgrade", "websocket"), "Connection"),
        ({"Connection": "keep-alive"}, 426, ("Upgrade", "websocket"), "Connection"),
        ({"Connection": "upgraded"}, 426, ("Upgrade", "websocket"), "Connection"),
        ({"Sec-WebSocket-Key": None}, 400, None, "exactly one Sec-WebSocket-Key"),
        ({"Sec-WebSocket-Key": [RFC_KEY, RFC_KEY]}, 400, None, "exactly one Sec-WebSocket-Key"),
        ({"Sec-WebSocket-Key": "not base64!"}, 400, None, "16 bytes"),
        ({"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ"}, 400, None, "16 bytes"),  # padding missing
        ({"Sec-WebSocket-Key": base64.b64encode(b"x" * 15).decode()}, 400, None, "16 bytes"),
        ({"Sec-WebSocket-Key": base64.b64encode(b"x" * 17).decode()}, 400, None, "16 bytes"),
        ({"Sec-WebSocket-Key": "\u00e9" * 24}, 400, None, "16 bytes"),
        ({"Sec-WebSocket-Version": None}, 426, ("Sec-WebSocket-Version", "13"), "Version"),
        ({"Sec-WebSocket-Version": "8"}, 426, ("Sec-WebSocket-Version", "13"), "Version"),
        ({"Sec-WebSocket-Version": "13, 8"}, 426, ("Sec-WebSocket-Version", "13"), "Version"),
        ({"Sec-WebSocket-Version": ["13", "13"]}, 426, ("Sec-WebSocket-Version", "13"), "Version"),
    ],
)
def test_server_refuses_with_the_right_status(changes, status, field, why):
    outcome = ServerHandshake().respond(opening_request(**changes))
    assert not outcome.accepted
    assert outcome.response.status == status
    assert outcome.error is not None and outcome.error.status == status
    assert why in str(outcome.error)
    if field is not None:
        assert field in outcome.response.headers.items()
    # A complete response: a short body saying why, framed, then close.
    body = outcome.response.body
    assert body.startswith(b"Failed to open a WebSocket connection: ")
    assert outcome.response.headers.get("Content-Length") == str(len(body))
    assert outcome.response.headers.get("Connection") == "close"


def test_refusal_body_does_not_echo_client_data():
    outcome = ServerHandshake().respond(opening_request(Sec_WebSocket_Key="<script>"))
    assert outcome.response.status == 400
    assert "base64" in str(outcome.error)
    assert b"<script>" not in outcome.to_bytes()


def test_server_checks_in_rfc_order():
    # Both the Upgrade and the key are wrong: the Upgrade is reported (426).
    request = opening_request(Upgrade=None, Sec_WebSocket_Key=None)
    assert "Sec-WebSocket-Key" not in request.headers
    outcome = ServerHandshake().respond(request)
    assert outcome.response.status == 426
    outcome = ServerHandshake().respond(opening_request(Sec_WebSocket_Key=None))
    assert outcome.response.status == 400


def test_subprotocol_is_the_servers_first_preference_the_client_offered():
    server = ServerHandshake(subprotocols=["v2", "chat", "superchat"])
    request = opening_request(Sec_WebSocket_Protocol=["superchat, chat", "other"])
    outcome = server.respond(request)
    assert outcome.subprotocol == "chat"
    assert outcome.response.headers.get_all("Sec-WebSocket-Protocol") == ["chat"]


def test_no_subprotocol_without_overlap():
    server = ServerHandshake(subprotocols=["chat"])
    outcome = server.respond(opening_request(Sec_WebSocket_Protocol="other"))
    assert outcome.accepted and outcome.subprotocol is None
    assert "Sec-WebSocket-Protocol" not in outcome.response.headers
    outcome = server.respond(opening_request())
    assert outcome.accepted and outcome.subprotocol is None


def test_subprotocols_offered_to_a_server_without_any_are_declined():
    outcome = ServerHandshake().respond(opening_request(Sec_WebSocket_Protocol="chat"))
    assert outcome.accepted and "Sec-WebSocket-Protocol" not in outcome.response.headers


def test_extension_offers_are_declined():
    request = opening_request(Sec_WebSocket_Extensions="permessage-deflate; client_max_window_bits")
    outcome = ServerHandshake().respond(request)
    assert outcome.accepted and "Sec-WebSocket-Extensions" not in outcome.response.headers


def test_extra_headers_go_into_the_101():
    server = ServerHandshake(extra_headers=[("Server", "netkit"), ("Set-Cookie", "a=1")])
    outcome = server.respond(opening_request())
    assert outcome.response.headers.get("Server") == "netkit"
    assert outcome.response.headers.get("Set-Cookie") == "a=1"


@pytest.mark.parametrize("name", ["Upgrade", "sec-websocket-accept", "Sec-WebSocket-Protocol"])
def test_extra_headers_cannot_replace_handshake_fields(name):
    with pytest.raises(ValueError, match="set by the handshake"):
        ServerHandshake(extra_headers={name: "x"})


@pytest.mark.parametrize("name", ["a b", "", "caf\xe9", "chat\n", "a/b"])
def test_server_and_client_subprotocols_must_be_tokens(name):
    with pytest.raises(ValueError):
        ServerHandshake(subprotocols=[name])
    with pytest.raises(ValueError):
        ClientHandshake("ws://h/", subprotocols=[name])


@pytest.mark.parametrize(
    "origins, origin, accepted",
    [
        (["http://example.com"], "http://example.com", True),
        (["http://example.com"], "http://evil.example", False),
        (["http://example.com"], None, False),
        (["http://example.com", None], None, True),
        ([], "http://example.com", False),
        (lambda origin: origin is not None and origin.endswith(".example.com"), "https://a.example.com", True),
        (lambda origin: origin is not None and origin.endswith(".example.com"), "https://example.org", False),
        (None, "http://anything", True),
    ],
)
def test_origin_check(origins, origin, accepted):
    outcome = ServerHandshake(origins=origins).respond(opening_request(Origin=origin))
    assert outcome.accepted is accepted
    if not accepted:
        assert outcome.response.status == 403


def test_two_origins_are_refused_when_origins_are_checked():
    server = ServerHandshake(origins=["a"])
    outcome = server.respond(opening_request(Origin=["a", "a"]))
    assert outcome.response.status == 400


def test_process_request_can_answer_instead_of_upgrading():
    seen = []

    def health(request):
        seen.append(request.target)
        if request.target == "/health":
            return Response(200, body=b"ok\n")
        return None

    server = ServerHandshake(process_request=health)
    plain = Request("GET", "/health", headers=[("Host", "h")])
    outcome = server.respond(plain)
    assert not outcome.accepted and outcome.error is None
    assert outcome.to_bytes() == b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
    # Returning None lets the handshake go on.
    assert server.respond(opening_request()).accepted
    assert seen == ["/health", "/chat"]


def test_process_request_framing_fields_are_kept_when_given():
    answer = Response(404, headers=[("Content-Length", "0"), ("Connection", "keep-alive")])
    outcome = ServerHandshake(process_request=lambda request: answer).respond(opening_request())
    assert outcome.response.headers.get_all("Content-Length") == ["0"]
    assert outcome.response.headers.get_all("Connection") == ["keep-alive"]


def test_process_request_errors_propagate():
    def broken(request):
        raise RuntimeError("bug in the application")

    with pytest.raises(RuntimeError):
        ServerHandshake(process_request=broken).respond(opening_request())


@pytest.mark.parametrize("status", [400, 414, 431, 505])
def test_reject_turns_a_parse_error_into_a_response(status):
    outcome = ServerHandshake().reject(HTTPError("bad head", status=status))
    assert not outcome.accepted
    assert outcome.response.status == status
    assert outcome.error.status == status
    assert outcome.to_bytes().startswith(b"HTTP/1.1 %d " % status)


def test_oversized_request_head_is_answered_with_431():
    data = b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 9000 + b"\r\n\r\n"
    with pytest.raises(HTTPError) as info:
        RequestParser().feed(data)
    outcome = ServerHandshake().reject(info.value)
    assert outcome.response.status == 431


# Client


def test_client_request():
    client = ClientHandshake(
        "ws://server.example.com:8080/chat?x=1",
        origin="http://example.com",
        subprotocols=["chat", "superchat"],
        extra_headers=[("User-Agent", "netkit-test")],
        key=RFC_KEY,
    )
    assert client.request() == (
        b"GET /chat?x=1 HTTP/1.1\r\n"
        b"Host: server.example.com:8080\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"Origin: http://example.com\r\n"
        b"Sec-WebSocket-Protocol: chat, superchat\r\n"
        b"User-Agent: netkit-test\r\n"
        b"\r\n"
    )


def test_client_request_minimal_and_ipv6():
    client = ClientHandshake("wss://[::1]/")
    headers = client.http_request.headers
    assert headers.get("Host") == "[::1]"
    assert "Origin" not in headers and "Sec-WebSocket-Protocol" not in headers
    assert len(base64.b64decode(client.key)) == 16


def test_each_client_gets_a_fresh_key():
    assert ClientHandshake("ws://h/").key != ClientHandshake("ws://h/").key


def test_client_host_can_be_overridden():
    client = ClientHandshake("ws://10.0.0.1/", extra_headers={"Host": "virtual.example"})
    assert client.http_request.headers.get_all("Host") == ["virtual.example"]


def test_client_argument_errors():
    with pytest.raises(ValueError):
        ClientHandshake("ws://h/", extra_headers={"Sec-WebSocket-Key": "x"})
    with pytest.raises(ValueError):
        ClientHandshake("ws://h/", origin="a", extra_headers={"Origin": "b"})
    with pytest.raises(ValueError):
        ClientHandshake("ws://h/", subprotocols=["a,b"])


def server_response(client, **changes):
    """The 101 a correct server would send ``client``, with ``changes``."""
    fields = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Accept": accept_key(client.key),
    }
    status = changes.pop("status", 101)
    fields.update({name.replace("_", "-"): value for name, value in changes.items()})
    headers = Headers()
    for name, value in fields.items():
        for one in [] if value is None else value if isinstance(value, list) else [value]:
            headers.add(name, one)
    return Response(status, headers=headers)


def test_client_validates_a_correct_response():
    client = ClientHandshake("ws://h/", subprotocols=["chat", "v2"])
    assert client.validate(server_response(client)) is None
    assert client.validate(server_response(client, Sec_WebSocket_Protocol="v2")) == "v2"
    assert client.validate(server_response(client, Upgrade="WEBSOCKET", Connection="keep-alive, upgrade")) is None


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"Upgrade": None}, "Upgrade"),
        ({"Upgrade": "h2c"}, "Upgrade"),
        ({"Upgrade": "websocket, h2c"}, "Upgrade"),
        ({"Connection": None}, "Connection"),
        ({"Connection": "close"}, "Connection"),
        ({"Sec-WebSocket-Accept": None}, "Sec-WebSocket-Accept"),
        ({"Sec-WebSocket-Accept": RFC_ACCEPT}, "does not match"),
        ({"Sec-WebSocket-Accept": "garbage"}, "does not match"),
        ({"Sec-WebSocket-Accept": [RFC_ACCEPT, RFC_ACCEPT]}, "exactly one"),
        ({"Sec-WebSocket-Extensions": "permessage-deflate; server_no_context_takeover"}, "permessage-deflate"),
        ({"Sec-WebSocket-Protocol": "superchat"}, "superchat"),
        ({"Sec-WebSocket-Protocol": "chat, v2"}, "more than one"),
        ({"Sec-WebSocket-Protocol": ["chat", "v2"]}, "more than one"),
    ],
)
def test_client_refuses_a_wrong_101(changes, match):
    client = ClientHandshake("ws://h/", subprotocols=["chat", "v2"], key=generate_key())
    response = server_response(client, **changes)
    with pytest.raises(HandshakeError, match=match) as info:
        client.validate(response)
    assert info.value.status == 101


def test_client_refuses_a_subprotocol_when_none_was_offered():
    client = ClientHandshake("ws://h/")
    with pytest.raises(HandshakeError, match="not offered"):
        client.validate(server_response(client, Sec_WebSocket_Protocol="chat"))


def test_client_refuses_a_non_101():
    client = ClientHandshake("ws://h/")
    with pytest.raises(HandshakeError, match="HTTP 200") as info:
        client.validate(server_response(client, status=200))
    assert info.value.status == 200


def test_client_full_exchange_with_the_server_byte_by_byte():
    client = ClientHandshake("ws://h/chat", subprotocols=["chat"])
    request, rest = RequestParser().feed(client.request())
    assert rest == b""
    outcome = ServerHandshake(subprotocols=["chat"]).respond(request)
    frames = b"\x81\x05hello"
    data = outcome.to_bytes() + frames
    for index in range(len(data)):
        if client.receive_data(data[index : index + 1]):
            break
    assert client.accepted and client.subprotocol == "chat"
    assert client.response.status == 101
    # The head ended on this byte: what follows belongs to the connection.
    assert client.leftover == b"" and data[index + 1 :] == frames


def test_client_leftover_holds_frames_sent_with_the_101():
    client = ClientHandshake("ws://h/")
    request, _ = RequestParser().feed(client.request())
    outcome = ServerHandshake().respond(request)
    assert client.receive_data(outcome.to_bytes() + b"\x81\x02hi\x89\x00")
    assert client.leftover == b"\x81\x02hi\x89\x00"
    with pytest.raises(InvalidStateError):
        client.receive_data(b"more")
    with pytest.raises(InvalidStateError):
        client.receive_eof()


def test_client_reads_the_body_of_a_redirect_before_failing():
    client = ClientHandshake("ws://h/")
    head = b"HTTP/1.1 302 Found\r\nLocation: ws://elsewhere/\r\nContent-Length: 10\r\n\r\n"
    assert client.receive_data(head + b"moved") is False
    with pytest.raises(HandshakeError, match="redirecting to ws://elsewhere/") as info:
        client.receive_data(b" away")
    error = info.value
    assert error.status == 302
    assert ("Location", "ws://elsewhere/") in error.headers
    assert error.body == b"moved away"


def test_client_reads_a_close_delimited_refusal_until_eof():
    client = ClientHandshake("ws://h/")
    assert client.receive_data(b"HTTP/1.0 403 Forbidden\r\n\r\nno") is False
    assert client.receive_data(b" entry") is False
    with pytest.raises(HandshakeError) as info:
        client.receive_eof()
    assert info.value.status == 403 and info.value.body == b"no entry"


def test_client_refusal_body_is_bounded():
    client = ClientHandshake("ws://h/", max_body_size=4)
    with pytest.raises(HandshakeError) as info:
        client.receive_data(b"HTTP/1.1 500 Oops\r\n\r\n" + b"x" * 100)
    assert info.value.body == b"xxxx"


def test_client_skips_interim_responses():
    client = ClientHandshake("ws://h/")
    data = (
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
        + b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + b"Sec-WebSocket-Accept: "
        + accept_key(client.key).encode()
        + b"\r\n\r\n"
    )
    assert client.receive_data(data)
    assert client.response.status == 101


def test_client_skips_five_interim_responses_but_not_six():
    early_hints = b"HTTP/1.1 103 Early Hints\r\n\r\n"
    accepted = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    accepted += b"Sec-WebSocket-Accept: " + RFC_ACCEPT.encode() + b"\r\n\r\n"
    client = ClientHandshake("ws://h/", key=RFC_KEY)
    for byte in range(len(early_hints) * 5):
        assert client.receive_data((early_hints * 5)[byte : byte + 1]) is False
    assert client.receive_data(accepted)
    client = ClientHandshake("ws://h/", key=RFC_KEY)
    with pytest.raises(HandshakeError, match="more than 5 interim") as info:
        client.receive_data(early_hints * 6 + accepted)
    assert info.value.status == 0


def test_client_refuses_a_read_packed_with_interim_responses():
    """A read packed with thousands of interim heads is refused after a few
    of them, rather than each head copying the rest of the read (quadratic)."""
    client = ClientHandshake("ws://h/", max_head_size=1 << 20)
    with pytest.raises(HandshakeError, match="interim"):
        client.receive_data(b"HTTP/1.1 103 Early Hints\r\n\r\n" * 20_000)


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: \xb2\r\n\r\n",
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: " + b"9" * 19 + b"\r\n\r\n",
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n",
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ],
    ids=["superscript two", "19 digits", "5000 digits", "two lengths"],
)
def test_client_refusal_with_an_invalid_content_length_is_a_handshake_error(head):
    client = ClientHandshake("ws://h/")
    with pytest.raises(HandshakeError) as info:
        client.receive_data(head + b"body")
    assert info.value.status == 401 and info.value.body == b""


@pytest.mark.parametrize("split", [0, 1])
def test_client_refusal_with_a_malformed_chunked_body_is_a_handshake_error(split):
    client = ClientHandshake("ws://h/")
    head = b"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"3\r\nabc\r\nzz\r\n"
    with pytest.raises(HandshakeError, match="malformed chunk size line") as info:
        if split:
            assert client.receive_data(head) is False
            client.receive_data(body)
        else:
            client.receive_data(head + body)
    error = info.value
    assert error.status == 401 and error.body == b"abc"
    assert ("Transfer-Encoding", "chunked") in error.headers
    assert isinstance(error.__cause__, HTTPError)


def test_client_invalid_101_through_receive_data():
    client = ClientHandshake("ws://h/")
    data = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    with pytest.raises(HandshakeError, match="Sec-WebSocket-Accept"):
        client.receive_data(data)


def test_client_malformed_response_is_a_handshake_error_with_status_0():
    client = ClientHandshake("ws://h/")
    with pytest.raises(HandshakeError) as info:
        client.receive_data(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    assert info.value.status == 0
    assert isinstance(info.value.__cause__, HTTPError)


def test_client_oversized_response_head():
    client = ClientHandshake("ws://h/", max_head_size=100)
    with pytest.raises(HandshakeError, match="max_head_size"):
        client.receive_data(b"HTTP/1.1 101 Switching Protocols\r\n" + b"X: y\r\n" * 30)


def test_client_eof_before_any_response():
    client = ClientHandshake("ws://h/")
    client.receive_data(b"HTTP/1.1 10")
    with pytest.raises(HandshakeError, match="without completing"):
        client.receive_eof()


def test_response_parser_and_server_output_agree():
    outcome = ServerHandshake(subprotocols=["chat"]).respond(opening_request(Sec_WebSocket_Protocol="chat"))
    response, rest = ResponseParser().feed(outcome.to_bytes())
    assert response.status == 101 and rest == b""
    assert response.headers == outcome.response.headers
