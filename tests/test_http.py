"""HTTP/1.1 heads: incremental parsing at every split, limits, RFC 9112 corner cases."""

import random
import time
from collections.abc import Callable

import pytest

from netkit.errors import HTTPError, InvalidStateError
from netkit.http import (
    BodyReader,
    Headers,
    Request,
    RequestParser,
    Response,
    ResponseParser,
    serialize_request,
    serialize_response,
)

REQUEST = (
    b"GET /chat?room=1 HTTP/1.1\r\n"
    b"Host: example.com:8080\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: keep-alive, Upgrade\r\n"
    b"Sec-WebSocket-Protocol: chat\r\n"
    b"sec-websocket-protocol:  superchat , v2 \r\n"
    b"\r\n"
)
REST = b"\x81\x85\x00\x00\x00\x00hello\n\r\n"


def feed_in_chunks(parser, data, sizes):
    """Feed ``data`` cut at ``sizes``; return the result and check nothing came early."""
    result = None
    position = 0
    for size in sizes:
        chunk = data[position : position + size]
        position += size
        assert result is None, "the head completed before its last byte"
        result = parser.feed(chunk)
    assert position >= len(data)
    return result


def random_sizes(rng, total):
    sizes = []
    while sum(sizes) < total:
        sizes.append(rng.randint(1, 40))
    return sizes


def check_request(result):
    request, rest = result
    assert request.method == "GET"
    assert request.target == "/chat?room=1"
    assert request.version == (1, 1)
    assert request.headers.get("host") == "example.com:8080"
    assert request.headers.get_all("Sec-WebSocket-Protocol") == ["chat", "superchat , v2"]
    assert request.headers.get_list("SEC-WEBSOCKET-PROTOCOL") == ["chat", "superchat", "v2"]
    assert rest == REST


def test_request_parsed_whole():
    check_request(RequestParser().feed(REQUEST + REST))


def test_request_parsed_byte_by_byte():
    data = REQUEST + REST
    # The head completes on its last byte; the rest then arrives in one piece.
    result = feed_in_chunks(RequestParser(), REQUEST, [1] * len(REQUEST))
    request, rest = result
    assert rest == b""
    check_request((request, data[len(REQUEST) :]))


@pytest.mark.parametrize("seed", range(20))
def test_request_parsed_in_random_chunks(seed):
    rng = random.Random(seed)
    data = REQUEST + REST
    cut = len(REQUEST)
    # Cut anywhere before the end of the head, then deliver the rest together.
    sizes = random_sizes(rng, cut)
    parser = RequestParser()
    position = 0
    result = None
    for size in sizes:
        end = min(position + size, cut)
        if end == cut:
            result = parser.feed(data[position:])
            break
        assert parser.feed(data[position:end]) is None
        position = end
    check_request(result)


def test_bare_lf_line_endings_are_accepted():
    request, rest = RequestParser().feed(b"GET / HTTP/1.1\nHost: a\n\nxyz")
    assert request.headers.get("Host") == "a"
    assert rest == b"xyz"


def test_leading_empty_lines_are_ignored():
    request, _ = RequestParser().feed(b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert request.method == "GET"


def test_field_values_are_trimmed_and_may_be_empty():
    request, _ = RequestParser().feed(b"GET / HTTP/1.1\r\nA:\t x y \t\r\nB:\r\n\r\n")
    assert request.headers.get("a") == "x y"
    assert request.headers.get("b") == ""
    assert "B" in request.headers and "C" not in request.headers


def test_obs_text_in_values_survives_as_latin_1():
    request, _ = RequestParser().feed(b"GET / HTTP/1.1\r\nX: caf\xe9\r\n\r\n")
    assert request.headers.get("x").encode("latin-1") == b"caf\xe9"


def test_http_1_0_is_parsed_and_reported():
    request, _ = RequestParser().feed(b"GET / HTTP/1.0\r\n\r\n")
    assert request.version == (1, 0)


def test_feeding_after_completion_is_misuse():
    parser = RequestParser()
    assert parser.feed(b"GET / HTTP/1.1\r\n\r\n") is not None
    with pytest.raises(InvalidStateError):
        parser.feed(b"more")


@pytest.mark.parametrize(
    "head",
    [
        b"GET /\r\n\r\n",  # no version
        b"GET  / HTTP/1.1\r\n\r\n",  # two spaces
        b"GET / http/1.1\r\n\r\n",  # the version is case-sensitive
        b"GET / HTTP/1.1 \r\n\r\n",  # trailing whitespace
        b"GET / HTTP/1.1x\r\n\r\n",
        b"GET / HTTP/11\r\n\r\n",
        b"GET / HTTP/1.\r\n\r\n",
        b" GET / HTTP/1.1\r\n\r\n",  # leading whitespace
        b"GET /\t/ HTTP/1.1\r\n\r\n",  # a control in the target
        b"G(T / HTTP/1.1\r\n\r\n",  # method is not a token
        b"GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n",  # non-ASCII target
        b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",  # whitespace before the colon
        b"GET / HTTP/1.1\r\nHost a\r\n\r\n",  # no colon
        b"GET / HTTP/1.1\r\n: a\r\n\r\n",  # empty name
        b"GET / HTTP/1.1\r\nA: 1\r\n  folded\r\n\r\n",  # obsolete line folding
        b"GET / HTTP/1.1\r\n continued\r\nA: 1\r\n\r\n",  # whitespace before the first field
        b"GET / HTTP/1.1\r\nA: x\ry\r\n\r\n",  # bare CR
        b"GET / HTTP/1.1\r\nA: x\x00y\r\n\r\n",  # NUL
        b"GET / HTTP/1.1\r\nA: x\x1by\r\n\r\n",  # other control character
    ],
)
def test_malformed_requests_are_400(head):
    with pytest.raises(HTTPError) as info:
        RequestParser().feed(head)
    assert info.value.status == 400


def test_obs_fold_error_explains_itself():
    with pytest.raises(HTTPError, match="obsolete line folding"):
        RequestParser().feed(b"GET / HTTP/1.1\r\nA: 1\r\n\tfolded\r\n\r\n")


def test_http_2_in_a_request_line_is_505():
    with pytest.raises(HTTPError) as info:
        RequestParser().feed(b"GET / HTTP/2.0\r\n\r\n")
    assert info.value.status == 505


# Limits: each is enforced exactly at its boundary, with its own status, and
# before the end of an overlong line arrives.


def test_request_line_at_max_line_is_accepted():
    line = b"GET /" + b"a" * 95 + b" HTTP/1.1"
    assert len(line) == 109
    assert RequestParser(max_line=109).feed(line + b"\r\n\r\n") is not None


def test_request_line_over_max_line_is_414():
    line = b"GET /" + b"a" * 96 + b" HTTP/1.1"
    with pytest.raises(HTTPError, match="max_line=109") as info:
        RequestParser(max_line=109).feed(line + b"\r\n\r\n")
    assert info.value.status == 414


def test_request_line_over_max_line_is_refused_before_its_end():
    parser = RequestParser(max_line=100)
    assert parser.feed(b"GET /" + b"a" * 96) is None  # 101 bytes: may still end in CR
    with pytest.raises(HTTPError) as info:
        parser.feed(b"a")
    assert info.value.status == 414


@pytest.mark.parametrize("length", [8193, 8194, 9000])
def test_long_request_line_is_414_with_default_limits_however_it_arrives(length):
    line = b"GET /" + b"a" * (length - 14) + b" HTTP/1.1"
    assert len(line) == length
    for data in (line, line + b"\r", line + b"\r\n\r\n"):
        with pytest.raises(HTTPError) as info:
            RequestParser().feed(data)
        assert info.value.status == 414


def test_header_line_over_max_line_is_431():
    with pytest.raises(HTTPError, match="header line") as info:
        RequestParser(max_line=20).feed(b"GET / HTTP/1.1\r\nX: " + b"a" * 18 + b"\r\n\r\n")
    assert info.value.status == 431


def test_header_line_over_max_line_is_refused_before_its_end():
    parser = RequestParser(max_line=20)
    parser.feed(b"GET / HTTP/1.1\r\nX: " + b"a" * 18)
    with pytest.raises(HTTPError) as info:
        parser.feed(b"a")
    assert info.value.status == 431


def test_max_headers():
    fields = b"".join(b"X-%d: 1\r\n" % i for i in range(4))
    assert RequestParser(max_headers=4).feed(b"GET / HTTP/1.1\r\n" + fields + b"\r\n") is not None
    with pytest.raises(HTTPError, match="max_headers=3") as info:
        RequestParser(max_headers=3).feed(b"GET / HTTP/1.1\r\n" + fields + b"\r\n")
    assert info.value.status == 431


def test_max_head_size_counts_every_byte_of_the_head():
    head = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n"
    assert RequestParser(max_head_size=len(head)).feed(head + b"rest")[1] == b"rest"
    with pytest.raises(HTTPError, match="max_head_size") as info:
        RequestParser(max_head_size=len(head) - 1).feed(head)
    assert info.value.status == 431


def test_max_head_size_is_enforced_before_the_head_ends():
    parser = RequestParser(max_head_size=64)
    parser.feed(b"GET / HTTP/1.1\r\n")
    with pytest.raises(HTTPError) as info:
        for _ in range(100):
            parser.feed(b"A: b\r\n")
    assert info.value.status == 431


def test_default_limits_accept_a_big_but_reasonable_head():
    cookie = b"Cookie: " + b"c" * 7000 + b"\r\n"
    assert RequestParser().feed(b"GET / HTTP/1.1\r\n" + cookie + b"\r\n") is not None
    with pytest.raises(HTTPError):
        RequestParser().feed(b"GET / HTTP/1.1\r\n" + cookie + cookie + b"\r\n")


# Responses


def test_response_parsed_byte_by_byte_with_rest():
    head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    frames = b"\x81\x02hi"
    parser = ResponseParser()
    for byte in head[:-1]:
        assert parser.feed(bytes([byte])) is None
    response, rest = parser.feed(head[-1:] + frames)
    assert (response.status, response.reason, response.version) == (101, "Switching Protocols", (1, 1))
    assert response.headers.get("upgrade") == "websocket"
    assert rest == frames


def test_response_without_reason_phrase():
    response, _ = ResponseParser().feed(b"HTTP/1.1 404\r\n\r\n")
    assert response.status == 404
    assert response.reason == "Not Found"  # the standard phrase fills in


def test_response_unfolds_obsolete_line_folding():
    response, _ = ResponseParser().feed(b"HTTP/1.1 200 OK\r\nX: a\r\n  b\r\n\tc\r\nY:\r\n d\r\n\r\n")
    assert response.headers.get("x") == "a b c"
    assert response.headers.get("y") == "d"


def test_response_consumes_whitespace_lines_before_the_first_field():
    response, _ = ResponseParser().feed(b"HTTP/1.1 200 OK\r\n junk\r\nA: 1\r\n\r\n")
    assert response.headers.items() == [("A", "1")]


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 000 OK\r\n\r\n",  # 3DIGIT, but no status: valid ones are 100 to 599
        b"HTTP/1.1 099 OK\r\n\r\n",
        b"HTTP/1.1 +20 OK\r\n\r\n",
        b"HTTP/1.1\r\n\r\n",
        b"HTTP/1.1  200 OK\r\n\r\n",
        b"HTTP/1.10 200 OK\r\n\r\n",
        b"HTTP/1 200 OK\r\n\r\n",
        b"http/1.1 200 OK\r\n\r\n",
        b"ICY 200 OK\r\n\r\n",
        b"HTTP/1.1 200 O\x00K\r\n\r\n",  # a control character in the reason
        b"HTTP/1.1 200 OK\r\nA: 1\r\n \x00\r\n\r\n",
    ],
)
def test_malformed_responses(head):
    with pytest.raises(HTTPError):
        ResponseParser().feed(head)


def test_response_reason_keeps_spaces_tabs_and_obs_text():
    response, _ = ResponseParser().feed(b"HTTP/1.0 599 Not \tso caf\xe9 \r\n\r\n")
    assert (response.status, response.version) == (599, (1, 0))
    assert response.reason == "Not \tso caf\xe9 "


def test_response_folding_is_joined_with_single_spaces_across_many_lines():
    head = b"HTTP/1.1 200 OK\r\nX: a\r\n" + b" b\r\n \r\n" * 300 + b"Y: c\r\n\r\n"
    response, _ = ResponseParser().feed(head)
    assert response.headers.get("x") == "a" + " b" * 300
    assert response.headers.get("y") == "c"


def test_status_line_over_max_line():
    with pytest.raises(HTTPError, match="status line"):
        ResponseParser(max_line=10).feed(b"HTTP/1.1 200 OK\r\n\r\n")


# Headers


def test_headers_keep_order_case_and_repeats():
    headers = Headers([("A", "1"), ("b", "2")])
    headers.add("a", "3")
    assert headers.get("a") == "1"
    assert headers.get_all("A") == ["1", "3"]
    assert headers.get("missing") is None
    assert headers.get("missing", "x") == "x"
    assert headers.items() == [("A", "1"), ("b", "2"), ("a", "3")]
    assert list(headers) == headers.items()
    assert len(headers) == 3
    assert 42 not in headers


def test_headers_from_mapping_and_equality_ignores_name_case():
    assert Headers({"Host": "a"}) == Headers([("host", "a")])
    assert Headers({"Host": "a"}) != Headers([("host", "b")])
    assert Headers() != "not headers"


def test_get_list_drops_empty_elements():
    headers = Headers([("Connection", " , keep-alive,,Upgrade "), ("connection", "close")])
    assert headers.get_list("connection") == ["keep-alive", "Upgrade", "close"]


# Writing


def test_serialize_request_round_trips():
    request = Request("GET", "/a?b=c", headers=[("Host", "h"), ("X", "caf\xe9")])
    data = serialize_request(request)
    assert data == b"GET /a?b=c HTTP/1.1\r\nHost: h\r\nX: caf\xe9\r\n\r\n"
    parsed, rest = RequestParser().feed(data)
    assert parsed == request and rest == b""


def test_serialize_response_appends_the_body():
    response = Response(400, headers={"Content-Length": "3"}, body=b"no\n")
    assert serialize_response(response) == b"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nno\n"


@pytest.mark.parametrize(
    "headers", [[("X", "a\r\nInjected: 1")], [("Bad Name", "1")], [("X", "\u20ac")], [("X", "a\x00")]]
)
def test_serialize_refuses_header_injection(headers):
    with pytest.raises(ValueError):
        serialize_request(Request("GET", "/", headers=headers))
    with pytest.raises(ValueError):
        serialize_response(Response(200, headers=headers))


def test_serialize_refuses_bad_request_line_and_status():
    with pytest.raises(ValueError):
        serialize_request(Request("GET", "/a b"))
    with pytest.raises(ValueError):
        serialize_request(Request("G T", "/"))
    with pytest.raises(ValueError):
        serialize_response(Response(42))
    with pytest.raises(ValueError):
        serialize_response(Response(200, "OK\r\nX: 1"))


# Bodies of refused handshakes


def response_with(*headers, status=403):
    return Response(status, headers=list(headers))


def test_body_by_content_length_ignores_what_follows():
    reader = BodyReader(response_with(("Content-Length", "5")))
    assert not reader.feed(b"ab")
    assert reader.feed(b"cdeEXTRA")
    assert reader.body == b"abcde" and not reader.truncated


def test_body_by_content_length_cut_short_by_eof():
    reader = BodyReader(response_with(("Content-Length", "5")))
    reader.feed(b"ab")
    reader.feed_eof()
    assert reader.done and reader.truncated and reader.body == b"ab"


def test_body_until_close():
    reader = BodyReader(response_with())
    assert not reader.feed(b"a")
    assert not reader.feed(b"b")
    reader.feed_eof()
    assert reader.done and reader.body == b"ab" and not reader.truncated


def test_body_is_truncated_at_max_size_without_waiting():
    reader = BodyReader(response_with(("Content-Length", "100")), max_size=4)
    assert reader.feed(b"abcdef")
    assert reader.body == b"abcd" and reader.truncated


@pytest.mark.parametrize("status", [101, 103, 204, 304])
def test_no_body_statuses(status):
    assert BodyReader(response_with(("Content-Length", "3"), status=status)).done


def test_no_body_for_head_and_for_a_zero_length():
    assert BodyReader(response_with(("Content-Length", "3")), request_method="HEAD").done
    assert BodyReader(response_with(("Content-Length", "0"))).done


@pytest.mark.parametrize(
    "value",
    [
        "abc",
        "-1",
        "+1",
        "1_000",
        "3, 4",
        "\xb2",  # "²": str.isdigit() says yes, int() says no
        "\u0661",  # ARABIC-INDIC DIGIT ONE: int() would read it as 1
        pytest.param("9" * 19, id="19 digits"),  # more digits than any real length has
        pytest.param("9" * 5000, id="5000 digits"),  # more digits than int() converts at all
    ],
)
def test_invalid_content_length_keeps_nothing(value):
    reader = BodyReader(response_with(("Content-Length", value)))
    assert reader.done and reader.body == b""


def test_the_longest_content_length_accepted_has_18_digits():
    reader = BodyReader(response_with(("Content-Length", "9" * 18)))
    assert not reader.feed(b"abc")
    assert reader.body == b"abc"


def test_repeated_identical_content_length_is_fine():
    reader = BodyReader(response_with(("Content-Length", "2, 2")))
    assert reader.feed(b"ok")


CHUNKED = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\nEXTRA"


def test_chunked_body_byte_by_byte():
    reader = BodyReader(response_with(("Transfer-Encoding", "gzip, chunked")))
    done = False
    for byte in CHUNKED:
        assert not done
        done = reader.feed(bytes([byte]))
        if done:
            break
    assert reader.body == b"Wikipedia in\r\n\r\nchunks."


@pytest.mark.parametrize("seed", range(5))
def test_chunked_body_in_random_chunks(seed):
    rng = random.Random(seed)
    reader = BodyReader(response_with(("Transfer-Encoding", "chunked")))
    position = 0
    while not reader.done:
        size = rng.randint(1, 9)
        reader.feed(CHUNKED[position : position + size])
        position += size
    assert reader.body == b"Wikipedia in\r\n\r\nchunks."


def test_chunked_body_truncated_at_max_size():
    reader = BodyReader(response_with(("Transfer-Encoding", "chunked")), max_size=6)
    assert reader.feed(CHUNKED)
    assert reader.body == b"Wikipe" and reader.truncated


def test_non_chunked_transfer_coding_reads_until_close():
    reader = BodyReader(response_with(("Transfer-Encoding", "gzip"), ("Content-Length", "1")))
    reader.feed(b"abc")
    assert not reader.done
    reader.feed_eof()
    assert reader.body == b"abc"


@pytest.mark.parametrize(
    "data",
    [
        b"zz\r\n",
        b"3\r\nabcX\r\n",
        b"\r\n",  # no size
        b" 3\r\nabc\r\n",  # whitespace before the size
        b"+3\r\nabc\r\n",
        b"0x3\r\nabc\r\n",
        b"1" * 17 + b"\r\n",  # more than 64 bits of size
        pytest.param(b"3;" + b"e" * 9000 + b"\r\n", id="a chunk line over max_line, its end included"),
    ],
)
def test_malformed_chunked_body(data):
    reader = BodyReader(response_with(("Transfer-Encoding", "chunked")))
    with pytest.raises(HTTPError):
        reader.feed(data)


def test_chunk_size_of_16_hex_digits_and_extensions_are_accepted():
    reader = BodyReader(response_with(("Transfer-Encoding", "chunked")))
    assert not reader.feed(b"000000000000000A \t;name=value;flag\r\n0123456")
    assert reader.feed(b"789\r\n0\r\n\r\n")
    assert reader.body == b"0123456789"


def test_chunked_body_cut_short_by_eof():
    reader = BodyReader(response_with(("Transfer-Encoding", "chunked")))
    reader.feed(b"5\r\nab")
    reader.feed_eof()
    assert reader.truncated and reader.body == b"ab"


# Linear time on hostile input.  A regular expression that backtracks, or a
# buffer searched again from its start on every feed(), turns a few KiB from
# a peer into seconds of CPU on the loop.


class ScanCountingBuffer(bytearray):
    """A parser's buffer that counts the bytes its ``find`` calls may examine."""

    scanned = 0

    def find(self, sub, start=0, end=None):  # type: ignore[override]
        stop = len(self) if end is None else end
        self.scanned += max(0, stop - start)
        return super().find(sub, start, stop)


def cpu_cost_per_byte(parse: Callable[[bytes], object], data: bytes) -> float:
    """The least CPU time per input byte that ``parse(data)`` took over a few
    trials, each repeating the parse for at least 5 ms (so the clock's
    resolution does not matter)."""
    best = float("inf")
    for _ in range(5):
        repetitions = 0
        start = time.process_time()
        while True:
            parse(data)
            repetitions += 1
            elapsed = time.process_time() - start
            if elapsed >= 0.005:
                break
        best = min(best, elapsed / repetitions / len(data))
        if elapsed > 0.5:
            break  # one slow parse says enough; do not repeat it
    return best


UNLIMITED = 1 << 20  # limits out of the way, so that 64 KiB heads parse


def parse_request(data: bytes) -> object:
    return RequestParser(max_line=UNLIMITED, max_headers=UNLIMITED, max_head_size=UNLIMITED).feed(data)


def parse_response(data: bytes) -> object:
    return ResponseParser(max_line=UNLIMITED, max_headers=UNLIMITED, max_head_size=UNLIMITED).feed(data)


def parse_chunked(data: bytes) -> object:
    reader = BodyReader(response_with(("Transfer-Encoding", "chunked")), max_size=UNLIMITED)
    return reader.feed(data)


def padded(prefix: bytes, filler: bytes, suffix: bytes, size: int) -> bytes:
    """``prefix``, ``filler`` repeated, ``suffix``: about ``size`` bytes in all."""
    count = (size - len(prefix) - len(suffix)) // len(filler)
    return prefix + filler * count + suffix


HOSTILE_SHAPES = {
    # Whitespace inside a field value: the shape that made a lazy
    # "value, then optional whitespace" pattern backtrack.
    "spaces inside a value": (parse_request, lambda n: padded(b"GET / HTTP/1.1\r\nX: a", b" ", b"b\r\n\r\n", n)),
    "tabs and spaces inside a value": (
        parse_request,
        lambda n: padded(b"GET / HTTP/1.1\r\nX: a", b" \t", b"\x01\r\n\r\n", n),
    ),
    "whitespace after a value, then junk": (
        parse_request,
        lambda n: padded(b"GET / HTTP/1.1\r\nX:", b" ", b"\x7f\r\n\r\n", n),
    ),
    "a long field name": (parse_request, lambda n: padded(b"GET / HTTP/1.1\r\n", b"a", b" : x\r\n\r\n", n)),
    "a long request target": (parse_request, lambda n: padded(b"GET /", b"a", b" HTTP/1.1 \r\n\r\n", n)),
    "many fields": (parse_request, lambda n: padded(b"GET / HTTP/1.1\r\n", b"A: b\r\n", b"\r\n", n)),
    "a long reason phrase": (
        parse_response,
        lambda n: padded(b"HTTP/1.1 200 ", b"O K ", b"\x00\r\n\r\n", n),
    ),
    "folded lines": (parse_response, lambda n: padded(b"HTTP/1.1 200 OK\r\nX: a\r\n", b" a\r\n", b"\r\n", n)),
    "many trailer fields": (parse_chunked, lambda n: padded(b"1\r\na\r\n0\r\n", b"T: x\r\n", b"\r\n", n)),
    "many small chunks": (parse_chunked, lambda n: padded(b"", b"1\r\na\r\n", b"0\r\n\r\n", n)),
}


@pytest.mark.parametrize("shape", HOSTILE_SHAPES)
def test_parsing_costs_linear_time_in_the_input(shape):
    """A 64 KiB input costs about 8 times an 8 KiB one of the same shape.

    Measured as CPU time per byte, compared between the two sizes: the
    quadratic work hides inside C (the regular expression engine, memchr),
    where no counter written in Python can see it.  CPU time (not wall
    time) leaves out what other processes take on a loaded machine, the
    minimum over several trials leaves out interruptions, and the ratio of
    per-byte costs does not depend on the machine's speed.  Linear code
    gives a ratio near 1, quadratic code near 8 (the size ratio); the
    threshold of 3 leaves a wide margin on both sides.
    """
    parse, make = HOSTILE_SHAPES[shape]
    small, large = make(8 * 1024), make(64 * 1024)

    def attempt(data):
        try:
            parse(data)
        except HTTPError:
            pass  # the malformed shapes are refused; what they cost is measured

    ratio = cpu_cost_per_byte(attempt, large) / cpu_cost_per_byte(attempt, small)
    assert ratio < 3, f"{shape}: a 64 KiB input costs {ratio:.1f} times more per byte than an 8 KiB one"


def test_a_head_fed_a_byte_at_a_time_is_scanned_once():
    head = b"GET / HTTP/1.1\r\nX: " + b"a" * 8000 + b"\r\n\r\n"
    parser = RequestParser()
    parser._buffer = buffer = ScanCountingBuffer()
    for index in range(len(head) - 1):
        assert parser.feed(head[index : index + 1]) is None
    assert parser.feed(head[-1:]) is not None
    assert len(head) <= buffer.scanned <= 2 * len(head)


def test_a_chunked_body_fed_a_byte_at_a_time_is_scanned_once():
    body = b"1;" + b"e" * 8000 + b"\r\na\r\n0\r\n\r\n"
    reader = BodyReader(response_with(("Transfer-Encoding", "chunked")))
    reader._buffer = buffer = ScanCountingBuffer()
    for index in range(len(body)):
        reader.feed(body[index : index + 1])
    assert reader.done and reader.body == b"a"
    assert len(body) - 10 <= buffer.scanned <= 2 * len(body)
