"""The RESP codec: every reply type, every split of the input, malformed input, limits."""

from __future__ import annotations

import array
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

import netkit
from netkit.redis.errors import RedisError, RespLimitExceeded, RespProtocolError
from netkit.redis.resp import (
    NEED_DATA,
    Limits,
    Push,
    RespParser,
    VerbatimString,
    encode_command,
    encode_commands,
)

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024

# Each sample: the bytes a server sends and the value the parser must make of them.
SAMPLES: list[tuple[bytes, object]] = [
    (b"+OK\r\n", "OK"),
    (b"+\r\n", ""),
    (b"+caf\xc3\xa9\r\n", "caf\u00e9"),
    (b":0\r\n", 0),
    (b":-42\r\n", -42),
    (b":9223372036854775807\r\n", 2**63 - 1),
    (b":-9223372036854775808\r\n", -(2**63)),
    (b"$3\r\nfoo\r\n", b"foo"),
    (b"$0\r\n\r\n", b""),
    (b"$4\r\na\r\nb\r\n", b"a\r\nb"),  # binary safe: a bulk may hold CR LF
    (b"$-1\r\n", None),
    (b"*0\r\n", []),
    (b"*-1\r\n", None),
    (b"*3\r\n:1\r\n$1\r\nx\r\n$-1\r\n", [1, b"x", None]),
    (b"*2\r\n*2\r\n+a\r\n*1\r\n:1\r\n*0\r\n", [["a", [1]], []]),
    (b"_\r\n", None),
    (b",3.25\r\n", 3.25),
    (b",-1e-3\r\n", -0.001),
    (b",10\r\n", 10.0),
    (b",inf\r\n", math.inf),
    (b",-inf\r\n", -math.inf),
    (b"#t\r\n", True),
    (b"#f\r\n", False),
    (b"(3492890328409238509324850943850943825024385\r\n", 3492890328409238509324850943850943825024385),
    (b"(-12\r\n", -12),
    (b"=15\r\ntxt:Some string\r\n", VerbatimString("txt", b"Some string")),
    (b"=4\r\nmkd:\r\n", VerbatimString("mkd", b"")),
    (b"%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n,2.5\r\n", {"first": 1, b"second": 2.5}),
    (b"%0\r\n", {}),
    (b"~3\r\n+a\r\n:1\r\n+a\r\n", {"a", 1}),
    (b"~0\r\n", set()),
    (b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n", Push([b"message", b"ch", b"hi"])),
    (b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*2\r\n:1\r\n:2\r\n", [1, 2]),  # attribute dropped
    (b"*2\r\n|1\r\n+ttl\r\n:3600\r\n:1\r\n:2\r\n", [1, 2]),  # nested attribute: not an element
    (b"|0\r\n+OK\r\n", "OK"),
]
ERROR_SAMPLES = [
    (b"-ERR unknown command 'FOO'\r\n", "ERR unknown command 'FOO'", "ERR"),
    (b"-WRONGTYPE Operation against a key\r\n", "WRONGTYPE Operation against a key", "WRONGTYPE"),
    (b"-oops\r\n", "oops", ""),
    (b"!21\r\nSYNTAX invalid syntax\r\n", "SYNTAX invalid syntax", "SYNTAX"),
]
ALL_WIRE = b"".join(wire for wire, _ in SAMPLES) + b"".join(wire for wire, _, _ in ERROR_SAMPLES)


def same(a: object, b: object) -> bool:
    """Equality that also checks types (True is not 1, Push is not list) and NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)  # type: ignore[arg-type]
    if isinstance(a, RedisError):
        return a.message == b.message  # type: ignore[attr-defined]
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))  # type: ignore[arg-type]
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)  # type: ignore[attr-defined,index]
    return a == b


def expected_replies() -> list[object]:
    return [value for _, value in SAMPLES] + [RedisError(message) for _, message, _ in ERROR_SAMPLES]


def feed_in_pieces(parser: RespParser, data: bytes, cuts: list[int] | range) -> list[object]:
    replies: list[object] = []
    start = 0
    for cut in [*cuts, len(data)]:
        replies += parser.feed(data[start:cut])
        start = cut
    return replies


def random_cuts(rng: random.Random, size: int, max_piece: int) -> list[int]:
    cuts, pos = [], 0
    while True:
        pos += rng.randint(1, max_piece)
        if pos >= size:
            return cuts
        cuts.append(pos)


def parse_one(data: bytes, **limits: int) -> object:
    parser = RespParser(Limits(**limits))
    replies = parser.feed(data)
    assert len(replies) == 1 and parser.at_reply_boundary
    return replies[0]


# -- every reply type ---------------------------------------------------------


@pytest.mark.parametrize(("wire", "value"), SAMPLES, ids=[repr(wire[:12]) for wire, _ in SAMPLES])
def test_each_reply_type(wire: bytes, value: object) -> None:
    assert same(parse_one(wire), value)


@pytest.mark.parametrize(("wire", "message", "code"), ERROR_SAMPLES)
def test_errors_are_values_carrying_the_message_and_code(wire: bytes, message: str, code: str) -> None:
    error = parse_one(wire)
    assert isinstance(error, RedisError) and isinstance(error, netkit.NetkitError)
    assert (error.message, error.code, str(error)) == (message, code, message)


def test_nan_and_doubles_redis_writes() -> None:
    assert math.isnan(parse_one(b",nan\r\n"))  # type: ignore[arg-type]
    assert parse_one(b",1.5e+20\r\n") == 1.5e20


def test_an_error_inside_an_array_is_an_element_not_a_failure() -> None:
    reply = parse_one(b"*2\r\n+OK\r\n-ERR value is not an integer\r\n")
    assert isinstance(reply, list) and reply[0] == "OK" and isinstance(reply[1], RedisError)


def test_aggregates_as_map_keys_and_set_members_become_hashable() -> None:
    assert parse_one(b"%1\r\n*2\r\n:1\r\n:2\r\n+v\r\n") == {(1, 2): "v"}
    assert parse_one(b"~2\r\n*1\r\n:1\r\n%1\r\n+k\r\n~1\r\n:2\r\n") == {(1,), (("k", frozenset({2})),)}


def test_deep_but_allowed_nesting() -> None:
    wire = b"*1\r\n" * 31 + b"*0\r\n"
    value = parse_one(wire)
    for _ in range(32):
        assert isinstance(value, list)
        value = value[0] if value else None
    assert value is None


# -- every split of the input -------------------------------------------------


def test_all_samples_in_one_chunk() -> None:
    parser = RespParser()
    assert same(parser.feed(ALL_WIRE), expected_replies())
    assert parser.at_reply_boundary and parser.buffered_size == 0


def test_byte_by_byte() -> None:
    parser = RespParser()
    assert same(feed_in_pieces(parser, ALL_WIRE, range(1, len(ALL_WIRE))), expected_replies())
    assert parser.at_reply_boundary


@pytest.mark.parametrize(("wire", "value"), SAMPLES + [(w, RedisError(m)) for w, m, _ in ERROR_SAMPLES])
def test_every_two_way_split_of_each_sample(wire: bytes, value: object) -> None:
    for cut in range(len(wire) + 1):
        parser = RespParser()
        assert same(feed_in_pieces(parser, wire, [cut]), [value]), cut
        assert parser.at_reply_boundary


def test_every_three_way_split_of_a_nested_reply() -> None:
    wire = b"*3\r\n$5\r\nhello\r\n%1\r\n+k\r\n~1\r\n:7\r\n,-2.5\r\n"
    value = [b"hello", {"k": {7}}, -2.5]
    for first in range(1, len(wire)):
        for second in range(first, len(wire)):
            assert same(feed_in_pieces(RespParser(), wire, [first, second]), [value]), (first, second)


@pytest.mark.parametrize("seed", range(5))
def test_random_chunkings_with_fixed_seeds(seed: int) -> None:
    rng = random.Random(f"resp-chunkings-{seed}")
    samples = SAMPLES + [(w, RedisError(m)) for w, m, _ in ERROR_SAMPLES]
    chosen = [rng.choice(samples) for _ in range(300)]
    big = rng.randbytes(5000)
    chosen.append((b"$5000\r\n" + big + b"\r\n", big))
    rng.shuffle(chosen)
    data = b"".join(wire for wire, _ in chosen)
    parser = RespParser()
    for round_ in range(30):
        max_piece = rng.choice([1, 2, 3, 7, 64, 1000, len(data)])
        replies = feed_in_pieces(parser, data, random_cuts(rng, len(data), max_piece))
        assert same(replies, [value for _, value in chosen]), (round_, max_piece)
        assert parser.at_reply_boundary


def test_next_reply_takes_one_reply_at_a_time() -> None:
    parser = RespParser()
    parser.receive(b"+a\r\n:1\r\n$2\r\nx")
    assert parser.next_reply() == "a"
    assert parser.next_reply() == 1
    assert parser.next_reply() is NEED_DATA
    assert parser.buffered_size == 1 and not parser.at_reply_boundary  # the header is parsed, one byte of the body is not
    parser.receive(b"y\r\n")
    assert parser.next_reply() == b"xy"
    assert parser.next_reply() is NEED_DATA and parser.buffered_size == 0


def test_100000_replies_in_one_feed() -> None:
    parser = RespParser()
    replies = parser.feed(b"+OK\r\n" * 50_000 + b":7\r\n" * 50_000 + b"$3\r\nab")
    assert replies == ["OK"] * 50_000 + [7] * 50_000
    assert parser.buffered_size == 2


def test_the_search_for_a_line_end_resumes_where_it_stopped() -> None:
    """A long line arriving in small pieces is scanned once, not once per piece."""
    parser = RespParser()
    line = b"+" + b"a" * 60_000
    for start in range(0, len(line), 100):
        assert parser.feed(line[start : start + 100]) == []
        assert parser._scan_from == min(start + 100, len(line))
    assert parser.feed(b"\r\n") == ["a" * 60_000]


def test_feed_accepts_any_bytes_like_object() -> None:
    parser = RespParser()
    assert parser.feed(bytearray(b"+a\r\n:")) == ["a"]
    assert parser.feed(memoryview(b"1\r\n")) == [1]


def test_feed_eof_inside_a_reply() -> None:
    parser = RespParser()
    parser.feed_eof()
    parser.feed(b"*2\r\n:1\r\n")
    with pytest.raises(netkit.IncompleteReadError):
        parser.feed_eof()


# -- malformed input ----------------------------------------------------------

MALFORMED = [
    (b"x\r\n", "unknown RESP type byte"),
    (b"\r\n", "unknown RESP type byte"),
    (b"HTTP/1.1 400 Bad Request\r\n", "unknown RESP type byte"),
    (b"*1\r\n?\r\n", "unknown RESP type byte"),
    (b"$-2\r\n", "negative length"),
    (b"$-0\r\n", "negative length"),
    (b"*-5\r\n", "negative length"),
    (b"%-1\r\n", "negative length"),
    (b"~-1\r\n", "negative length"),
    (b">-1\r\n", "negative length"),
    (b"!-1\r\n", "negative length"),
    (b"=-1\r\n", "negative length"),
    (b"$\xd9\xa3\r\n", "not a decimal number"),  # ARABIC-INDIC DIGIT THREE in UTF-8
    (b"*\xef\xbc\x93\r\n", "not a decimal number"),  # FULLWIDTH DIGIT THREE
    (b":\xd9\xa3\r\n", "decimal digits"),
    (b"$ 3\r\nfoo\r\n", "not a decimal number"),
    (b"$+3\r\nfoo\r\n", "not a decimal number"),
    (b"$1_0\r\n", "not a decimal number"),
    (b"$\r\n", "not a decimal number"),
    (b"$3x\r\n", "not a decimal number"),
    (b"$?\r\n", "streamed"),
    (b"*?\r\n", "streamed"),
    (b"$" + b"1" * 20 + b"\r\n", "at most 19 digits"),
    (b"*" + b"9" * 400 + b"\r\n", "at most 19 digits"),
    (b":" + b"1" * 20 + b"\r\n", "at most 19 decimal digits"),
    (b":9223372036854775808\r\n", "out of range"),
    (b":-9223372036854775809\r\n", "out of range"),
    (b":\r\n", "decimal digits"),
    (b": 1\r\n", "decimal digits"),
    (b":1.5\r\n", "decimal digits"),
    (b"+OK\n", "LF alone"),
    (b":1\n:2\r\n", "LF alone"),
    (b"+O\rK\r\n", "contains a CR"),
    (b"-ERR\rx\r\n", "contains a CR"),
    (b"$3\r\nfooXY", "not followed by CRLF"),
    (b"$3\r\nfoo\rX", "not followed by CRLF"),
    (b"$3\r\nfoo\n\r", "not followed by CRLF"),
    (b"$0\r\n\n", "not followed by CRLF"),
    (b"_x\r\n", "null carries no data"),
    (b"#x\r\n", "boolean"),
    (b"#\r\n", "boolean"),
    (b"#true\r\n", "boolean"),
    (b",\r\n", "double"),
    (b",1_0\r\n", "double"),
    (b", 1\r\n", "double"),
    (b",1..2\r\n", "double"),
    (b",infinity\r\n", "double"),
    (b",\xd9\xa3\r\n", "double"),
    (b"(\r\n", "big number"),
    (b"(12a\r\n", "big number"),
    (b"(" + b"9" * 4301 + b"\r\n", "more than the 4300"),
    (b"=3\r\ntxt\r\n", "verbatim"),
    (b"=5\r\ntxt-a\r\n", "verbatim"),
]


@pytest.mark.parametrize(("wire", "message"), MALFORMED, ids=[repr(w[:16]) for w, _ in MALFORMED])
def test_malformed_input_is_a_protocol_error(wire: bytes, message: str) -> None:
    parser = RespParser()
    with pytest.raises(RespProtocolError, match=message) as caught:
        parser.feed(wire)
    assert isinstance(caught.value, netkit.ProtocolError)


@pytest.mark.parametrize(("wire", "message"), MALFORMED, ids=[repr(w[:16]) for w, _ in MALFORMED])
def test_malformed_input_byte_by_byte_gives_the_same_error(wire: bytes, message: str) -> None:
    parser = RespParser()
    with pytest.raises(RespProtocolError, match=message):
        for index in range(len(wire)):
            parser.feed(wire[index : index + 1])


def test_a_big_number_of_4300_digits_is_read() -> None:
    assert parse_one(b"(" + b"9" * 4300 + b"\r\n") == int("9" * 4300)


def test_errors_latch() -> None:
    parser = RespParser()
    with pytest.raises(RespProtocolError) as first:
        parser.feed(b"+fine\r\n@bad\r\n")
    for again in (lambda: parser.feed(b"+OK\r\n"), parser.next_reply, lambda: parser.receive(b"")):
        with pytest.raises(RespProtocolError) as later:
            again()
        assert later.value is first.value


def test_feed_into_keeps_the_replies_before_the_bad_one() -> None:
    replies: list[object] = []
    with pytest.raises(RespProtocolError):
        RespParser().feed_into(b"+one\r\n:2\r\n$-7\r\n", replies)
    assert replies == ["one", 2]


# -- limits -------------------------------------------------------------------


def test_the_defaults() -> None:
    limits = Limits()
    assert (limits.max_line_length, limits.max_bulk_length, limits.max_aggregate_length) == (64 * 1024, 64 * MIB, 2**20)
    assert (limits.max_depth, limits.max_reply_size) == (32, 128 * MIB)


@pytest.mark.parametrize("value", [0, -1, 1.5, None, True])
def test_limits_must_be_positive_ints(value: object) -> None:
    with pytest.raises(ValueError, match="max_depth"):
        Limits(max_depth=value)  # type: ignore[arg-type]


def test_a_1_gib_bulk_header_is_refused_before_its_body_arrives() -> None:
    parser = RespParser()
    with pytest.raises(RespLimitExceeded) as caught:
        parser.feed(b"$1073741824\r\n")
    error = caught.value
    assert isinstance(error, netkit.LimitExceeded)
    assert (error.limit, error.value, error.maximum, error.side) == ("max_bulk_length", 2**30, 64 * MIB, "local")
    assert str(error) == "bulk string of 1073741824 bytes exceeds max_bulk_length=67108864 (local)"
    assert parser.buffered_size == 0


@pytest.mark.parametrize("type_byte", [b"$", b"!", b"="])
def test_bulk_length_at_and_over_the_limit(type_byte: bytes) -> None:
    body = b"txt:" + b"x" * 96
    assert parse_one(type_byte + b"100\r\n" + body + b"\r\n", max_bulk_length=100) is not None
    with pytest.raises(RespLimitExceeded, match="max_bulk_length=99"):
        RespParser(Limits(max_bulk_length=99)).feed(type_byte + b"100\r\n")


@pytest.mark.parametrize(("type_byte", "what", "unit"), [
    (b"*", "array", "elements"), (b"~", "set", "elements"), (b">", "push", "elements"),
    (b"%", "map", "pairs"), (b"|", "attribute", "pairs"),
])
def test_aggregate_length_is_checked_before_any_element(type_byte: bytes, what: str, unit: str) -> None:
    with pytest.raises(RespLimitExceeded) as caught:
        RespParser(Limits(max_aggregate_length=3)).feed(type_byte + b"4\r\n")
    assert str(caught.value) == f"{what} of 4 {unit} exceeds max_aggregate_length=3 (local)"
    with pytest.raises(RespLimitExceeded, match="max_aggregate_length=1048576"):
        RespParser().feed(type_byte + b"2147483648\r\n")


def test_array_at_the_aggregate_limit() -> None:
    assert parse_one(b"*3\r\n:1\r\n:2\r\n:3\r\n", max_aggregate_length=3) == [1, 2, 3]


def test_nesting_deeper_than_max_depth() -> None:
    parser = RespParser()
    with pytest.raises(RespLimitExceeded) as caught:
        parser.feed(b"*1\r\n" * 100_000)
    assert (caught.value.limit, caught.value.value, caught.value.maximum) == ("max_depth", 33, 32)
    assert str(caught.value) == "nesting of 33 levels exceeds max_depth=32 (local)"
    assert len(parser._stack) == 32


@pytest.mark.parametrize("type_byte", [b"*", b"%", b"~", b">", b"|"])
def test_every_aggregate_counts_towards_the_depth(type_byte: bytes) -> None:
    assert parse_one(b"*1\r\n" + type_byte + b"0\r\n" + (b"+OK\r\n" if type_byte == b"|" else b""), max_depth=2) is not None
    with pytest.raises(RespLimitExceeded, match="max_depth"):
        RespParser(Limits(max_depth=2)).feed(b"*1\r\n*1\r\n" + type_byte + b"0\r\n")


def test_a_line_without_end_is_refused_once_it_passes_the_limit() -> None:
    parser = RespParser(Limits(max_line_length=10))
    assert parser.feed(b"+0123456789\r") == []  # exactly the limit, CR arrived, LF not yet
    assert parser.feed(b"\n") == ["0123456789"]
    parser.feed(b"+0123456789")
    with pytest.raises(RespLimitExceeded, match="max_line_length=10"):
        parser.feed(b"a")  # 11 bytes and no CRLF in sight: refused without waiting for one


def test_a_line_over_the_limit_in_one_chunk() -> None:
    with pytest.raises(RespLimitExceeded, match="line of .* exceeds max_line_length=65536"):
        RespParser().feed(b"-" + b"e" * 100_000 + b"\r\n")


def test_a_reply_over_max_reply_size() -> None:
    wire = b"*4\r\n" + b"$10\r\n0123456789\r\n" * 4
    assert len(parse_one(wire, max_reply_size=len(wire))) == 4  # type: ignore[arg-type]
    parser = RespParser(Limits(max_reply_size=len(wire) - 1))
    with pytest.raises(RespLimitExceeded, match="max_reply_size") as caught:
        parser.feed(wire[:-12])  # refused at the last bulk's header, before its body
    assert caught.value.value == len(wire)


def test_max_reply_size_counts_each_reply_on_its_own() -> None:
    parser = RespParser(Limits(max_reply_size=6))
    assert parser.feed(b"+abc\r\n" * 1000 + b"+ab") == ["abc"] * 1000  # 6 bytes each
    assert parser.feed(b"c\r\n") == ["abc"]
    with pytest.raises(RespLimitExceeded, match="max_reply_size"):
        parser.feed(b"+abcd\r\n")


# -- encoding commands --------------------------------------------------------


def test_encode_a_command_as_an_array_of_bulk_strings() -> None:
    assert encode_command("SET", "k", "v") == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
    assert encode_command("PING") == b"*1\r\n$4\r\nPING\r\n"


def test_encode_each_argument_type() -> None:
    wire = encode_command("SET", "caf\u00e9", b"\x00\r\n", 42, -7, 1.5, 1e100, bytearray(b"ba"), memoryview(b"mv"))
    parser = RespParser()
    assert parser.feed(wire) == [[b"SET", "caf\u00e9".encode(), b"\x00\r\n", b"42", b"-7", b"1.5", b"1e+100", b"ba", b"mv"]]


def test_encode_counts_the_bytes_of_a_memoryview_not_its_items() -> None:
    view = memoryview(array.array("I", [1, 2, 3]))
    assert encode_command(view) == b"*1\r\n$12\r\n" + view.tobytes() + b"\r\n"
    strided = memoryview(b"abcdef")[::2]
    assert encode_command(strided) == b"*1\r\n$3\r\nace\r\n"


def test_encode_subclasses_of_the_accepted_types() -> None:
    import enum

    class Number(enum.IntEnum):
        ONE = 1

    class Name(str):
        pass

    assert encode_command(Name("GET"), Number.ONE) == b"*2\r\n$3\r\nGET\r\n$1\r\n1\r\n"


@pytest.mark.parametrize("bad", [True, None, object(), ["a"], {"a": 1}])
def test_encode_refuses_other_types(bad: object) -> None:
    with pytest.raises(TypeError, match="str, bytes, int or float"):
        encode_command("SET", "k", bad)


def test_encode_refuses_an_empty_command() -> None:
    with pytest.raises(ValueError):
        encode_command()


def test_encode_commands_is_the_concatenation() -> None:
    commands = [("SET", "a", 1), ("GET", "a"), ("PING",)]
    assert encode_commands(commands) == b"".join(encode_command(*c) for c in commands)


# -- layers -------------------------------------------------------------------


@pytest.mark.parametrize("module", ["netkit.redis.resp", "netkit.redis"])
def test_the_codec_loads_no_socket_and_no_loop(module: str) -> None:
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); before = set(sys.modules); import {module}; "
        "print('\\n'.join(sorted(set(sys.modules) - before)))"
    )
    loaded = set(subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout.split())
    assert module in loaded
    forbidden = ["socket", "selectors", "ssl", "netkit.loop", "netkit.transports", "netkit.tasks", "netkit.streams"]
    assert [name for name in forbidden if name in loaded] == []
