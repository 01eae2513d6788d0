"""Connection state machine: messages, fragments, UTF-8, pings, limits, closing, misuse."""

import random

import pytest

from netkit.errors import InvalidStateError, MessageTooBig, ProtocolError
from netkit.websocket.connection import (
    CLOSED,
    CLOSING,
    CONNECTING,
    OPEN,
    Close,
    Connection,
    Role,
    is_valid_close_code,
)
from netkit.websocket.events import (
    BinaryChunk,
    BinaryMessage,
    CloseReceived,
    ConnectionFailed,
    Ping,
    Pong,
    TextChunk,
    TextMessage,
)
from netkit.websocket.frames import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    RSV1,
    TEXT,
    Frame,
    FrameParser,
    apply_mask,
    encode_header,
    serialize_frame,
)

KEY = b"\x5a\x01\xc3\x7e"


def make(role, **options):
    """A connection with a deterministic source of mask keys and ping payloads."""
    options.setdefault("random_bytes", random.Random(role.value).randbytes)
    return Connection(role, **options)


def server(**options):
    return make(Role.SERVER, **options)


def client(**options):
    return make(Role.CLIENT, **options)


def from_client(opcode, payload=b"", *, fin=True, rsv=0):
    """A frame as a client sends it to a server: masked."""
    return serialize_frame(opcode, payload, fin=fin, rsv=rsv, mask_key=KEY)


def from_server(opcode, payload=b"", *, fin=True, rsv=0):
    """A frame as a server sends it to a client: not masked."""
    return serialize_frame(opcode, payload, fin=fin, rsv=rsv)


def raw_from_client(first, payload):
    """A masked frame with any first byte, even one the serializer refuses."""
    assert len(payload) < 126
    return bytes([first, 0x80 | len(payload)]) + serialize_frame(BINARY, payload, mask_key=KEY)[2:]


def close_payload(code, reason=b""):
    return code.to_bytes(2, "big") + reason


def sent(conn):
    """Drain what ``conn`` wants to send and parse it as its peer would."""
    data = b"".join(conn.data_to_send())
    parser = FrameParser(expect_masked=conn.role is Role.CLIENT, max_message_size=None)
    frames = parser.feed(data)
    assert parser.error is None and parser.buffered == 0
    return frames


def feed(conn, data, sizes=None):
    """Feed ``data`` whole or cut at ``sizes``; return all events."""
    if sizes is None:
        return conn.receive_data(data)
    events = []
    position = 0
    for size in sizes:
        events.extend(conn.receive_data(data[position : position + size]))
        position += size
    assert position >= len(data)
    return events


def random_sizes(seed, total, biggest=20):
    rng = random.Random(seed)
    sizes = []
    while sum(sizes) < total:
        sizes.append(rng.randint(1, biggest))
    return sizes


def chunkings(data):
    """Whole, byte by byte, and three random chunkings with fixed seeds."""
    return [None, [1] * len(data)] + [random_sizes(seed, len(data)) for seed in range(3)]


def assert_failed(conn, events, code, match=""):
    """The connection failed with ``code``: the last event says so, the close
    frame is queued, and the transport is to be closed."""
    assert isinstance(events[-1], ConnectionFailed), events
    failure = events[-1]
    assert failure.code == code
    assert match in str(failure.error)
    assert conn.failure is failure.error
    assert conn.state is CLOSING
    assert conn.close_initiator == "local"
    assert conn.should_close_transport
    frames = sent(conn)
    assert frames[-1].opcode == CLOSE
    assert int.from_bytes(frames[-1].payload[:2], "big") == code
    assert conn.close_sent.code == code
    # Whatever the peer sends now is ignored.
    assert conn.receive_data(from_client(TEXT, b"late")) == []


# Messages


@pytest.mark.parametrize("sizes_index", range(5))
def test_server_receives_messages_at_any_chunking(sizes_index):
    data = (
        from_client(TEXT, "h\u00e9llo \U0001f600".encode())
        + from_client(BINARY, bytes(range(256)) * 3)
        + from_client(TEXT, b"")
        + from_client(BINARY, b"")
    )
    conn = server()
    events = feed(conn, data, chunkings(data)[sizes_index])
    assert events == [
        TextMessage("h\u00e9llo \U0001f600"),
        BinaryMessage(bytes(range(256)) * 3),
        TextMessage(""),
        BinaryMessage(b""),
    ]
    assert all(type(event.data) is (str if isinstance(event, TextMessage) else bytes) for event in events)
    assert conn.state is OPEN and not conn.should_close_transport


def test_client_receives_unmasked_messages():
    conn = client()
    assert conn.receive_data(from_server(TEXT, b"hi") + from_server(BINARY, b"\x00")) == [
        TextMessage("hi"),
        BinaryMessage(b"\x00"),
    ]


def test_messages_round_trip_between_client_and_server():
    alice, bob = client(), server()
    alice.send_text("caf\u00e9")
    alice.send_binary(b"\x00\xff" * 40000)
    events = bob.receive_data(b"".join(alice.data_to_send()))
    assert events == [TextMessage("caf\u00e9"), BinaryMessage(b"\x00\xff" * 40000)]
    bob.send_text("back")
    assert alice.receive_data(b"".join(bob.data_to_send())) == [TextMessage("back")]


# Fragmentation


def fragmented_with_pings():
    return (
        from_client(TEXT, b"fra", fin=False)
        + from_client(PING, b"1")
        + from_client(CONTINUATION, b"gm", fin=False)
        + from_client(PONG, b"unsolicited")
        + from_client(CONTINUATION, b"", fin=False)
        + from_client(PING, b"2")
        + from_client(CONTINUATION, b"ent", fin=True)
        + from_client(BINARY, b"a", fin=False)
        + from_client(CONTINUATION, b"b", fin=True)
    )


@pytest.mark.parametrize("sizes_index", range(5))
def test_fragmented_messages_with_interleaved_control_frames(sizes_index):
    data = fragmented_with_pings()
    conn = server()
    events = feed(conn, data, chunkings(data)[sizes_index])
    assert events == [
        Ping(b"1"),
        Pong(b"unsolicited", ()),
        Ping(b"2"),
        TextMessage("fragment"),
        BinaryMessage(b"ab"),
    ]
    # Each ping was answered at once with its own payload.
    assert sent(conn) == [Frame(PONG, b"1"), Frame(PONG, b"2")]


@pytest.mark.parametrize(
    "data, match",
    [
        (from_client(CONTINUATION, b"x"), "no message to continue"),
        (from_client(TEXT, b"a", fin=False) + from_client(TEXT, b"b"), "inside a fragmented message"),
        (from_client(BINARY, b"a", fin=False) + from_client(TEXT, b"b"), "inside a fragmented message"),
        (from_client(TEXT, b"a", fin=False) + from_client(BINARY, b"b", fin=False), "inside a fragmented message"),
    ],
)
def test_fragmentation_errors_fail_with_1002(data, match):
    conn = server()
    assert_failed(conn, conn.receive_data(data), 1002, match)


# Every protocol error of the frame layer becomes a failure with its code


@pytest.mark.parametrize(
    "data, code, match",
    [
        (from_client(TEXT, b"x", rsv=RSV1), 1002, "reserved bits"),
        (b"\x83\x80" + KEY, 1002, "unknown opcode"),
        (b"\x8b\x80" + KEY, 1002, "unknown opcode"),
        (raw_from_client(PING, b"x"), 1002, "fragmented"),
        (b"\x89\xfe\x00\x7e" + KEY + bytes(126), 1002, "125 bytes"),
        (from_server(TEXT, b"unmasked"), 1002, "not masked"),
        (b"\x82\xff\x80" + bytes(7), 1002, "most significant bit"),
    ],
)
def test_frame_errors_fail_the_connection(data, code, match):
    conn = server()
    events = conn.receive_data(from_client(TEXT, b"before") + data)
    assert events[0] == TextMessage("before")
    assert_failed(conn, events, code, match)


def test_masked_frame_from_a_server_fails_the_client():
    conn = client()
    events = conn.receive_data(from_client(TEXT, b"masked"))
    assert isinstance(events[-1], ConnectionFailed) and events[-1].code == 1002
    frames = sent(conn)
    assert frames == [Frame(CLOSE, close_payload(1002, b"protocol error"))]


def test_close_reason_sent_on_failure_does_not_echo_peer_data():
    conn = server()
    conn.receive_data(b"\x8f\x80" + KEY)  # opcode 0xF
    frames = sent(conn)
    assert frames[-1].payload == close_payload(1002, b"protocol error")
    assert "0xf" in str(conn.failure)  # the local error does say which opcode


def test_random_garbage_never_raises():
    for seed in range(30):
        rng = random.Random(seed)
        conn = server() if seed % 2 else client()
        data = rng.randbytes(rng.randint(1, 400))
        events = []
        for size in random_sizes(seed, len(data), 50):
            events.extend(conn.receive_data(data[:size]))
            data = data[size:]
        if conn.failure is not None:
            assert isinstance(events[-1], ConnectionFailed)
            assert conn.should_close_transport


# UTF-8: valid text at every split point, invalid text failing fast


VALID_CHARACTERS = ["\u00e9", "\u07ff", "\u0800", "\u20ac", "\ud7ff", "\ue000", "\uffff", "\U00010000", "\U0001f600", "\U0010ffff"]


@pytest.mark.parametrize("character", VALID_CHARACTERS)
def test_valid_utf8_split_between_fragments_at_every_point(character):
    encoded = ("a" + character + "b").encode()
    for split in range(len(encoded) + 1):
        conn = server()
        data = from_client(TEXT, encoded[:split], fin=False) + from_client(CONTINUATION, encoded[split:])
        assert conn.receive_data(data) == [TextMessage("a" + character + "b")], split


@pytest.mark.parametrize("character", VALID_CHARACTERS)
def test_valid_utf8_split_between_reads_inside_one_frame(character):
    text = "a" + character * 3 + "b"
    data = from_client(TEXT, text.encode())
    for split in range(1, len(data)):
        conn = server()
        events = conn.receive_data(data[:split]) + conn.receive_data(data[split:])
        assert events == [TextMessage(text)], split


# Invalid sequences, and the index of the byte from which no continuation can
# make them valid: a fail-fast decoder must fail at exactly that byte.
INVALID_SEQUENCES = [
    ("lone continuation byte", b"\x80", 0),
    ("lone last continuation byte", b"\xbf", 0),
    ("overlong 2-byte /", b"\xc0\xaf", 0),
    ("overlong 2-byte, C1", b"\xc1\xbf", 0),
    ("overlong 3-byte /", b"\xe0\x80\xaf", 1),
    ("overlong 3-byte, largest", b"\xe0\x9f\xbf", 1),
    ("overlong 4-byte /", b"\xf0\x80\x80\xaf", 1),
    ("overlong 4-byte, largest", b"\xf0\x8f\xbf\xbf", 1),
    ("high surrogate U+D800", b"\xed\xa0\x80", 1),
    ("low surrogate U+DFFF", b"\xed\xbf\xbf", 1),
    ("above U+10FFFF", b"\xf4\x90\x80\x80", 1),
    ("F5 lead byte", b"\xf5\x80\x80\x80", 0),
    ("5-byte sequence", b"\xf8\x88\x80\x80\x80", 0),
    ("FE", b"\xfe", 0),
    ("FF", b"\xff", 0),
    ("2-byte lead then ASCII", b"\xc3\x41", 1),
    ("3-byte sequence cut by ASCII", b"\xe2\x82\x41", 2),
    ("4-byte sequence cut by ASCII", b"\xf0\x9f\x98\x41", 3),
]
PREFIX = "\u03ba\u1f79\u03c3\u03bc\u03b5".encode()  # "κόσμε", valid


@pytest.mark.parametrize("name, sequence, index", INVALID_SEQUENCES)
def test_invalid_utf8_fails_at_its_first_bad_byte_inside_a_frame(name, sequence, index):
    # One text frame whose payload arrives in two reads: the first stops
    # right after the first invalid byte, long before the frame is complete.
    payload = PREFIX + sequence + b"edited" * 10
    data = from_client(TEXT, payload)
    cut = len(data) - len(payload) + len(PREFIX) + index
    conn = server()
    assert conn.receive_data(data[:cut]) == []  # still valid so far
    events = conn.receive_data(data[cut : cut + 1])
    assert_failed(conn, events, 1007, "invalid UTF-8")


@pytest.mark.parametrize("name, sequence, index", INVALID_SEQUENCES)
def test_invalid_utf8_fails_at_the_fragment_that_holds_it(name, sequence, index):
    conn = server()
    first = from_client(TEXT, PREFIX + sequence[:index], fin=False)
    second = from_client(CONTINUATION, sequence[index:] + b"edited", fin=False)
    assert conn.receive_data(first) == []
    assert_failed(conn, conn.receive_data(second), 1007)


@pytest.mark.parametrize("name, sequence, index", INVALID_SEQUENCES)
def test_invalid_utf8_in_a_whole_frame(name, sequence, index):
    conn = server()
    events = conn.receive_data(from_client(TEXT, PREFIX + sequence + b"edited"))
    assert_failed(conn, events, 1007)


@pytest.mark.parametrize("sequence", [b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98"])
def test_sequence_cut_by_the_end_of_the_message(sequence):
    conn = server()
    events = conn.receive_data(from_client(TEXT, b"ok", fin=False) + from_client(CONTINUATION, sequence))
    assert_failed(conn, events, 1007)
    conn = server()
    assert_failed(conn, conn.receive_data(from_client(TEXT, sequence)), 1007)


def test_autobahn_6_4_style_invalid_text_in_chops():
    # Autobahn 6.4.3: one frame, sent in three chops; the second chop makes it
    # invalid and the close is expected before the third is sent.
    payload = PREFIX + b"\xf4\x90\x80\x80" + b"edited"
    data = from_client(TEXT, payload)
    header = len(data) - len(payload)
    conn = server()
    assert conn.receive_data(data[: header + len(PREFIX)]) == []
    events = conn.receive_data(data[header + len(PREFIX) : header + len(PREFIX) + 4])
    assert_failed(conn, events, 1007)
    # 6.4.4: the same, but the second chop is the single byte F4, still valid.
    conn = server()
    assert conn.receive_data(data[: header + len(PREFIX) + 1]) == []
    assert_failed(conn, conn.receive_data(data[header + len(PREFIX) + 1 :]), 1007)


def test_binary_messages_are_not_checked_for_utf8():
    conn = server()
    assert conn.receive_data(from_client(BINARY, b"\xff\xfe")) == [BinaryMessage(b"\xff\xfe")]


# Streaming messages as they arrive


def test_streamed_text_chunks_hold_whole_characters():
    conn = server(stream_messages=True)
    text = "\u20ac" * 5
    data = from_client(TEXT, text.encode()[:7], fin=False) + from_client(CONTINUATION, text.encode()[7:])
    events = []
    for size in [len(data) - 3, 1, 1, 1]:
        events.extend(conn.receive_data(data[:size]))
        data = data[size:]
    assert all(isinstance(event, TextChunk) for event in events)
    assert "".join(event.data for event in events) == text
    assert [event.last for event in events][-1] is True
    assert not any(event.last for event in events[:-1])


def test_streamed_binary_chunks_come_as_the_bytes_arrive():
    conn = server(stream_messages=True)
    payload = bytes(range(200))
    data = from_client(BINARY, payload)
    events = conn.receive_data(data[:100]) + conn.receive_data(data[100:150]) + conn.receive_data(data[150:])
    assert [type(event) for event in events] == [BinaryChunk] * 3
    assert b"".join(event.data for event in events) == payload
    assert [event.last for event in events] == [False, False, True]


def test_streamed_single_frame_messages_are_one_last_chunk():
    conn = server(stream_messages=True)
    events = conn.receive_data(from_client(TEXT, b"hi") + from_client(BINARY, b"") + from_client(PING))
    assert events == [TextChunk("hi", True), BinaryChunk(b"", True), Ping(b"")]


def test_streamed_messages_still_fail_fast_on_invalid_utf8():
    conn = server(stream_messages=True)
    events = conn.receive_data(from_client(TEXT, b"ok", fin=False) + from_client(CONTINUATION, b"\xff"))
    assert events[0] == TextChunk("ok", False)
    assert_failed(conn, events, 1007)


# Message size limits


def test_default_limit_accepts_1_mib_and_refuses_one_byte_more():
    conn = server()
    payload = bytes(2**20)
    assert conn.receive_data(from_client(BINARY, payload)) == [BinaryMessage(payload)]
    conn = server()
    events = conn.receive_data(from_client(BINARY, payload[:1000], fin=False) + encode_header(CONTINUATION, 2**20 - 999, mask_key=KEY))
    assert_failed(conn, events, 1009)
    assert isinstance(conn.failure, MessageTooBig)


def test_limit_across_fragments_is_decided_from_the_header():
    conn = server(max_message_size=10)
    data = from_client(TEXT, b"12345", fin=False) + from_client(PING, bytes(50)) + encode_header(CONTINUATION, 6, mask_key=KEY)
    events = conn.receive_data(data)  # the 6 payload bytes never arrive
    assert events[0] == Ping(bytes(50))
    assert_failed(conn, events, 1009)
    assert str(conn.failure) == "message of 11 bytes exceeds max_message_size=10 (local)"


def test_limit_failure_tells_the_peer_which_limit():
    conn = server(max_message_size=10)
    conn.receive_data(encode_header(BINARY, 11, mask_key=KEY))
    assert sent(conn)[-1].payload == close_payload(1009, b"max_message_size=10 exceeded")


def test_no_limit():
    conn = server(max_message_size=None)
    assert conn.receive_data(encode_header(BINARY, 2**32, mask_key=KEY)) == []
    assert conn.failure is None


# Pings and pongs


def test_pings_are_answered_with_the_same_payload():
    conn = server()
    assert conn.receive_data(from_client(PING, b"abc") + from_client(PING, b"")) == [Ping(b"abc"), Ping(b"")]
    assert sent(conn) == [Frame(PONG, b"abc"), Frame(PONG, b"")]


def test_client_pongs_are_masked():
    conn = client()
    conn.receive_data(from_server(PING, b"abc"))
    data = b"".join(conn.data_to_send())
    assert data[1] & 0x80
    assert FrameParser(expect_masked=True).feed(data) == [Frame(PONG, b"abc")]


def test_auto_pong_can_be_turned_off():
    conn = server(auto_pong=False)
    assert conn.receive_data(from_client(PING, b"abc")) == [Ping(b"abc")]
    assert conn.data_to_send() == []
    conn.send_pong(b"abc")
    assert sent(conn) == [Frame(PONG, b"abc")]


def test_pongs_answer_outstanding_pings_in_order():
    conn = client()
    first = conn.send_ping()
    second = conn.send_ping(b"two")
    third = conn.send_ping()
    assert len(first) == 4 and second == b"two" and first != third
    assert sent(conn) == [Frame(PING, first), Frame(PING, b"two"), Frame(PING, third)]
    # A pong for the second ping answers the first one too.
    assert conn.receive_data(from_server(PONG, b"two")) == [Pong(b"two", (first, b"two"))]
    assert conn.receive_data(from_server(PONG, b"two")) == [Pong(b"two", ())]
    assert conn.receive_data(from_server(PONG, third)) == [Pong(third, (third,))]


def test_ping_misuse():
    conn = server()
    conn.send_ping(b"x")
    with pytest.raises(ValueError, match="already waiting"):
        conn.send_ping(b"x")
    with pytest.raises(ValueError, match="125"):
        conn.send_ping(bytes(126))
    with pytest.raises(ValueError, match="125"):
        conn.send_pong(bytes(126))


def test_random_ping_payloads_avoid_outstanding_ones():
    payloads = iter([b"same", b"same", b"diff"])
    conn = server(random_bytes=lambda n: next(payloads))
    assert conn.send_ping() == b"same"
    assert conn.send_ping() == b"diff"


# Sending


def test_server_frames_are_unmasked_and_client_frames_masked():
    conn = server()
    conn.send_text("hi")
    assert conn.data_to_send() == [b"\x81\x02hi"]
    conn = client()
    conn.send_binary(b"hi")
    (data,) = conn.data_to_send()
    assert data[:2] == b"\x82\x82" and len(data) == 8
    assert FrameParser(expect_masked=True).feed(data) == [Frame(BINARY, b"hi")]


def test_client_mask_keys_come_from_the_random_source():
    keys = bytes(range(8)) * 512
    conn = client(random_bytes=lambda n: keys[:n])
    conn.send_binary(b"aaaa")
    conn.send_binary(b"aaaa")
    first, second = conn.data_to_send()
    assert first[2:6] == bytes(range(4)) and second[2:6] == bytes(range(4, 8))


@pytest.mark.parametrize("length", [0, 125, 126, 65535, 65536])
def test_sent_lengths_use_the_shortest_encoding(length):
    conn = server()
    conn.send_binary(bytes(length))
    data = b"".join(conn.data_to_send())
    assert data[: len(encode_header(BINARY, length))] == encode_header(BINARY, length)
    assert len(data) == len(encode_header(BINARY, length)) + length


def test_large_bytes_payloads_are_not_copied():
    payload = bytes(100000)
    conn = server()
    conn.send_binary(payload)
    header, body = conn.data_to_send()
    assert body is payload
    assert header == encode_header(BINARY, 100000)
    mutable = bytearray(100000)
    conn.send_binary(mutable)
    _, body = conn.data_to_send()
    assert type(body) is bytes
    mutable[0] = 1
    assert body[0] == 0


def test_large_client_payloads_are_masked_into_their_own_buffer():
    conn = client()
    payload = bytes(range(256)) * 400
    conn.send_binary(payload)
    buffers = conn.data_to_send()
    assert len(buffers) == 2
    assert FrameParser(expect_masked=True, max_message_size=None).feed(b"".join(buffers)) == [Frame(BINARY, payload)]


@pytest.mark.parametrize("role", [Role.SERVER, Role.CLIENT])
def test_frame_size_fragments_a_message(role):
    conn = make(role)
    text = "\u20ac" * 10  # 30 bytes: frames of 7 split characters
    conn.send_text(text, frame_size=7)
    frames = sent(conn)
    assert [frame.opcode for frame in frames] == [TEXT] + [CONTINUATION] * 4
    assert [frame.fin for frame in frames] == [False] * 4 + [True]
    assert b"".join(frame.payload for frame in frames) == text.encode()
    peer = make(Role.CLIENT if role is Role.SERVER else Role.SERVER)
    conn.send_binary(b"abcdef", frame_size=2)
    conn.send_binary(b"ab", frame_size=2)
    assert peer.receive_data(b"".join(conn.data_to_send())) == [BinaryMessage(b"abcdef"), BinaryMessage(b"ab")]


def test_streaming_send_api():
    conn = server()
    conn.send_text("He", fin=False)
    conn.send_ping(b"p")  # control frames may go between fragments
    conn.send_continuation("ll", fin=False)
    conn.send_continuation("o", fin=True)
    conn.send_binary(b"\x01", fin=False)
    conn.send_continuation(b"\x02", fin=True)
    assert sent(conn) == [
        Frame(PING, b"p"),
        Frame(TEXT, b"He", False),
        Frame(CONTINUATION, b"ll", False),
        Frame(CONTINUATION, b"o", True),
        Frame(BINARY, b"\x01", False),
        Frame(CONTINUATION, b"\x02", True),
    ]


def test_streaming_send_misuse():
    conn = server()
    with pytest.raises(InvalidStateError, match="no message"):
        conn.send_continuation(b"x", fin=True)
    conn.send_text("a", fin=False)
    with pytest.raises(InvalidStateError, match="in pieces"):
        conn.send_text("b")
    with pytest.raises(InvalidStateError, match="in pieces"):
        conn.send_binary(b"b")
    with pytest.raises(TypeError):
        conn.send_continuation(b"bytes for a text message", fin=True)
    conn.send_continuation("end", fin=True)
    conn.send_binary(b"a", fin=False)
    with pytest.raises(TypeError):
        conn.send_continuation("str for a binary message", fin=True)


def test_send_type_checks():
    conn = server()
    with pytest.raises(TypeError):
        conn.send_text(b"bytes")
    with pytest.raises(TypeError):
        conn.send_binary("str", frame_size=2)
    with pytest.raises(ValueError):
        conn.send_binary(b"abc", frame_size=0)


def test_control_frames_go_ahead_of_queued_data():
    conn = server()
    conn.send_binary(b"data")
    conn.receive_data(from_client(PING, b"p"))
    assert conn.control_to_send() == [b"\x8a\x01p"]
    assert conn.control_to_send() == []
    conn.receive_data(from_client(PING, b"q"))
    conn.send_binary(b"more")
    assert conn.data_to_send() == [b"\x8a\x01q", b"\x82\x04data", b"\x82\x04more"]
    assert conn.data_to_send() == []


# Close codes


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999])
def test_valid_close_codes_are_echoed(code):
    assert is_valid_close_code(code)
    conn = server()
    events = conn.receive_data(from_client(CLOSE, close_payload(code, b"bye")))
    assert events == [CloseReceived(code, "bye")]
    assert sent(conn) == [Frame(CLOSE, close_payload(code))]  # the reason is not echoed
    assert conn.close_received == Close(code, "bye")
    assert conn.close_sent == Close(code, "")


@pytest.mark.parametrize("code", [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
def test_invalid_close_codes_fail_with_1002(code):
    assert not is_valid_close_code(code)
    conn = server()
    events = conn.receive_data(from_client(CLOSE, close_payload(code)))
    assert_failed(conn, events, 1002, "invalid close code")
    assert conn.close_received is None


def test_close_with_a_1_byte_payload_fails_with_1002():
    conn = server()
    assert_failed(conn, conn.receive_data(from_client(CLOSE, b"\x03")), 1002, "1-byte")


@pytest.mark.parametrize("reason", [b"\xff", b"\xed\xa0\x80", b"ok\xc0\xaf", b"\xe2\x82"])
def test_close_reason_with_invalid_utf8_fails_with_1007(reason):
    conn = server()
    assert_failed(conn, conn.receive_data(from_client(CLOSE, close_payload(1000, reason))), 1007)


def test_empty_close_is_answered_with_1000():
    conn = server()
    assert conn.receive_data(from_client(CLOSE)) == [CloseReceived(1005, "")]
    assert sent(conn) == [Frame(CLOSE, close_payload(1000))]
    assert conn.close_code == 1005


def test_close_reason_of_123_bytes_is_accepted():
    conn = server()
    reason = "\u00e9" * 61 + "x"
    assert conn.receive_data(from_client(CLOSE, close_payload(1000, reason.encode()))) == [CloseReceived(1000, reason)]


# The closing handshake, from each side


def exchange(sender, receiver):
    return receiver.receive_data(b"".join(sender.data_to_send()))


def test_closing_handshake_started_by_the_server():
    srv, cli = server(), client()
    srv.close(1001, "going away")
    assert srv.state is CLOSING and srv.close_initiator == "local"
    assert not srv.should_close_transport
    with pytest.raises(InvalidStateError):
        srv.send_text("too late")
    assert exchange(srv, cli) == [CloseReceived(1001, "going away")]
    assert cli.state is CLOSING and cli.close_initiator == "remote"
    assert not cli.should_close_transport  # a client waits for the server to close TCP
    assert exchange(cli, srv) == [CloseReceived(1001, "")]
    assert srv.should_close_transport  # the server closes TCP first
    assert srv.close_was_clean and cli.close_was_clean
    srv.receive_eof()
    cli.receive_eof()
    assert srv.state is CLOSED and cli.state is CLOSED
    assert cli.close_code == 1001 and cli.close_reason == "going away"
    assert srv.close_code == 1001 and srv.close_reason == ""
    assert srv.close_was_clean and cli.close_was_clean


def test_closing_handshake_started_by_the_client():
    srv, cli = server(), client()
    cli.close()
    assert cli.close_sent == Close(1000, "")
    assert exchange(cli, srv) == [CloseReceived(1000, "")]
    assert srv.should_close_transport and srv.close_initiator == "remote"
    assert exchange(srv, cli) == [CloseReceived(1000, "")]
    assert not cli.should_close_transport and cli.state is CLOSING
    cli.receive_eof()
    assert cli.state is CLOSED and cli.should_close_transport and cli.close_was_clean


def test_simultaneous_close():
    srv, cli = server(), client()
    srv.close(1000, "server")
    cli.close(1000, "client")
    assert exchange(srv, cli) == [CloseReceived(1000, "server")]
    assert exchange(cli, srv) == [CloseReceived(1000, "client")]
    assert cli.data_to_send() == [] and srv.data_to_send() == []  # no second close frame
    assert srv.close_was_clean and cli.close_was_clean
    assert srv.close_initiator == "local" and cli.close_initiator == "local"
    assert srv.should_close_transport and not cli.should_close_transport


def test_messages_still_arrive_after_a_local_close():
    conn = server()
    conn.close()
    conn.data_to_send()
    events = conn.receive_data(from_client(TEXT, b"in flight") + from_client(PING, b"p") + from_client(CLOSE, close_payload(1000)))
    assert events == [TextMessage("in flight"), Ping(b"p"), CloseReceived(1000, "")]
    assert conn.data_to_send() == []  # no pong after our close frame


def test_everything_after_a_close_frame_is_ignored():
    conn = server()
    data = from_client(CLOSE, close_payload(1000)) + from_client(TEXT, b"ignored") + b"\xff\xff garbage"
    assert conn.receive_data(data) == [CloseReceived(1000, "")]
    assert conn.receive_data(from_client(PING, b"p")) == []
    assert conn.failure is None
    assert sent(conn) == [Frame(CLOSE, close_payload(1000))]


def test_close_after_a_message_is_queued_after_it():
    conn = server()
    conn.send_text("last words")
    conn.close(1000)
    assert sent(conn) == [Frame(TEXT, b"last words"), Frame(CLOSE, close_payload(1000))]


def test_close_is_idempotent_and_validated():
    conn = server()
    for code in (999, 1004, 1005, 1006, 1015, 2000, 5000):
        with pytest.raises(ValueError):
            conn.close(code)
    with pytest.raises(ValueError, match="123"):
        conn.close(1000, "x" * 124)
    with pytest.raises(ValueError):
        conn.close(None, "reason without code")
    conn.close(1000, "x" * 123)
    conn.close(1001)
    frames = sent(conn)
    assert frames == [Frame(CLOSE, close_payload(1000, b"x" * 123))]


def test_close_without_a_code():
    srv, cli = server(), client()
    cli.close(None)
    assert cli.close_sent == Close(1005, "")
    assert exchange(cli, srv) == [CloseReceived(1005, "")]
    assert exchange(srv, cli) == [CloseReceived(1000, "")]


def test_eof_without_a_close_frame_is_an_abnormal_closure():
    conn = server()
    conn.receive_data(from_client(TEXT, b"partial", fin=False))
    conn.receive_eof()
    assert conn.state is CLOSED
    assert conn.close_code == 1006 and conn.close_reason == ""
    assert not conn.close_was_clean
    assert conn.should_close_transport
    assert conn.receive_data(from_client(TEXT, b"x")) == []
    conn.receive_eof()  # idempotent
    with pytest.raises(InvalidStateError):
        conn.send_text("x")
    conn.close()  # nothing to do any more


def test_eof_after_a_failure():
    conn = client()
    conn.receive_data(from_client(TEXT, b"masked"))
    conn.receive_eof()
    assert conn.state is CLOSED and not conn.close_was_clean and conn.close_code == 1006


def test_peer_error_after_our_close_fails_without_a_second_close_frame():
    conn = server()
    conn.close(1000)
    conn.data_to_send()
    events = conn.receive_data(from_client(CONTINUATION, b"x"))
    assert isinstance(events[-1], ConnectionFailed)
    assert conn.data_to_send() == []
    assert conn.should_close_transport and conn.close_sent == Close(1000, "")


def test_invalid_close_reply_to_our_close():
    conn = client()
    conn.close(1000)
    conn.data_to_send()
    events = conn.receive_data(from_server(CLOSE, close_payload(1005)))
    assert isinstance(events[-1], ConnectionFailed)
    assert not conn.close_was_clean and conn.should_close_transport


# CONNECTING


def test_connecting_until_open():
    conn = server(state=CONNECTING)
    with pytest.raises(InvalidStateError):
        conn.receive_data(from_client(TEXT, b"x"))
    with pytest.raises(InvalidStateError):
        conn.send_text("x")
    with pytest.raises(InvalidStateError):
        conn.close()
    conn.open("chat")
    assert conn.state is OPEN and conn.subprotocol == "chat"
    assert conn.receive_data(from_client(TEXT, b"x")) == [TextMessage("x")]
    with pytest.raises(InvalidStateError):
        conn.open()


def test_eof_while_connecting():
    conn = client(state=CONNECTING)
    conn.receive_eof()
    assert conn.state is CLOSED and conn.close_code == 1006


def test_a_connection_cannot_start_closing():
    with pytest.raises(ValueError):
        Connection(Role.SERVER, state=CLOSING)


# Events


def test_events_compare_by_type_and_value():
    assert TextMessage("a") == TextMessage("a")
    assert TextMessage("a") != TextMessage("b")
    assert Ping(b"a") != Pong(b"a")
    assert hash(Ping(b"a")) == hash(Ping(b"a"))
    assert repr(CloseReceived(1000, "bye")) == "CloseReceived(code=1000, reason='bye')"
    assert "...(100 bytes)" in repr(BinaryMessage(bytes(100)))
    assert ConnectionFailed(ProtocolError("x", close_code=1007)).code == 1007


# -- The lone-message fast path ------------------------------------------------
# A read holding exactly one small whole text or binary frame skips the general
# parser.  Whatever the bytes, the outcome must be the same as when the same
# frame arrives in two pieces (which the fast path never takes).


def _outcome(conn, chunks):
    events = []
    for chunk in chunks:
        events += conn.receive_data(chunk)
    # Exceptions compare by identity: compare what a failure says instead.
    seen = [(type(e).__name__, e.code, str(e.error)) if isinstance(e, ConnectionFailed) else e for e in events]
    return seen, conn.data_to_send(), conn.state, conn.should_close_transport


LONE_FRAME_CASES = [
    (TEXT, b""),
    (TEXT, "héllo wörld".encode()),
    (TEXT, b"\xe2\x82"),  # a truncated multi-byte sequence: invalid as a whole message
    (TEXT, b"\xc0\xaf"),  # an overlong form
    (TEXT, b"\xed\xa0\x80"),  # a surrogate
    (BINARY, b""),
    (BINARY, bytes(range(125))),
    (BINARY, bytes(range(126))),  # a 16-bit length: not a lone small frame
]


@pytest.mark.parametrize("role", [Role.SERVER, Role.CLIENT])
@pytest.mark.parametrize("opcode,payload", LONE_FRAME_CASES)
def test_a_lone_frame_gives_what_the_general_parser_gives(role, opcode, payload):
    frame = from_client(opcode, payload) if role is Role.SERVER else from_server(opcode, payload)
    whole = _outcome(make(role), [frame])
    split = _outcome(make(role), [frame[:1], frame[1:]])
    assert whole == split
    if opcode == TEXT and payload in (b"\xe2\x82", b"\xc0\xaf", b"\xed\xa0\x80"):
        assert whole[0][-1][:2] == ("ConnectionFailed", 1007)
    else:
        assert len(whole[0]) == 1 and whole[0][0].data == (payload.decode() if opcode == TEXT else payload)


@pytest.mark.parametrize(
    "frame",
    [
        from_client(BINARY, b"abc", fin=False),  # a fragment
        from_client(BINARY, b"abc", rsv=RSV1),  # a reserved bit
        from_server(BINARY, b"abc"),  # unmasked, to a server
        from_client(CONTINUATION, b"abc"),  # nothing to continue
        from_client(PING, b"abc"),
        from_client(BINARY, b"abc") + from_client(BINARY, b"def"),  # two frames
        from_client(BINARY, b"abc")[:-1],  # not whole
    ],
)
def test_reads_the_fast_path_must_not_take_still_get_the_rfc_answer(frame):
    whole = _outcome(server(), [frame])
    split = _outcome(server(), [frame[:1], frame[1:]])
    assert whole == split


def test_the_fast_path_keeps_the_message_size_limit():
    frame = from_client(BINARY, b"x" * 100)
    events, _, _, should_close = _outcome(server(max_message_size=99), [frame])
    assert events[-1][:2] == ("ConnectionFailed", 1009)
    assert should_close


def test_the_fast_path_does_not_take_a_read_while_a_message_is_under_way():
    conn = server()
    assert conn.receive_data(from_client(BINARY, b"ab", fin=False)) == []
    assert conn.receive_data(from_client(CONTINUATION, b"cd")) == [BinaryMessage(b"abcd")]
    events = conn.receive_data(from_client(BINARY, b"ef", fin=False)) + conn.receive_data(from_client(BINARY, b"gh"))
    assert isinstance(events[-1], ConnectionFailed) and events[-1].code == 1002


# -- receive_message(): the fast path without event objects ---------------------
# It returns the message of a lone small frame, or None having consumed
# nothing, so that receive_data() on the same bytes then does everything.

FAST_PATH_REFUSALS = [
    from_client(BINARY, b"abc", fin=False),
    from_client(BINARY, b"abc", rsv=RSV1),
    from_server(BINARY, b"abc"),
    from_client(CONTINUATION, b"abc"),
    from_client(PING, b"abc"),
    from_client(CLOSE, b"\x03\xe8"),
    from_client(BINARY, b"abc") + from_client(BINARY, b"def"),
    from_client(BINARY, b"abc")[:-1],
    b"",
]


@pytest.mark.parametrize("role", [Role.SERVER, Role.CLIENT])
@pytest.mark.parametrize("opcode,payload", LONE_FRAME_CASES)
def test_receive_message_returns_what_receive_data_would_or_consumes_nothing(role, opcode, payload):
    frame = from_client(opcode, payload) if role is Role.SERVER else from_server(opcode, payload)
    # The oracle is the general parser: the frame in two reads never takes a fast path.
    expected = _outcome(make(role), [frame[:1], frame[1:]])
    conn = make(role)
    message = conn.receive_message(frame)
    if message is None:
        # Invalid UTF-8 or too long: the general path gets the same bytes, untouched.
        assert _outcome(conn, [frame]) == expected
        assert len(payload) > 125 or expected[0][-1][0] == "ConnectionFailed"
    else:
        assert type(message) is (str if opcode == TEXT else bytes)
        assert [TextMessage(message) if opcode == TEXT else BinaryMessage(message)] == expected[0]
        assert (conn.data_to_send(), conn.state, conn.should_close_transport) == expected[1:]


@pytest.mark.parametrize("frame", FAST_PATH_REFUSALS)
def test_receive_message_refuses_every_other_read_untouched(frame):
    conn = server()
    assert conn.receive_message(frame) is None
    assert _outcome(conn, [frame]) == _outcome(server(), [frame[:1], frame[1:]])


def test_receive_message_refuses_while_not_reading_or_streaming():
    frame = from_client(TEXT, b"hi")
    assert server(stream_messages=True).receive_message(frame) is None
    connecting = server(state=CONNECTING)
    assert connecting.receive_message(frame) is None
    closed = server()
    closed.receive_data(from_client(CLOSE, b"\x03\xe8"))
    assert closed.receive_message(frame) is None
    assert closed.receive_data(frame) == []  # bytes after a close frame are ignored


def test_receive_message_keeps_the_limit_and_leaves_the_answer_to_receive_data():
    conn = server(max_message_size=99)
    frame = from_client(BINARY, b"x" * 100)
    assert conn.receive_message(frame) is None
    events = conn.receive_data(frame)
    assert isinstance(events[-1], ConnectionFailed) and events[-1].code == 1009


def test_receive_message_and_receive_data_interleave():
    conn = server()
    assert conn.receive_message(from_client(TEXT, b"one")) == "one"
    assert conn.receive_data(from_client(TEXT, b"tw", fin=False)) == []
    assert conn.receive_message(from_client(CONTINUATION, b"o")) is None  # a message is under way
    assert conn.receive_data(from_client(CONTINUATION, b"o")) == [TextMessage("two")]
    assert conn.receive_message(from_client(BINARY, b"\x00\x01")) == b"\x00\x01"
    assert conn.data_to_send() == []


def test_seeded_random_reads_get_the_same_answer_from_the_fast_path_and_the_general_parser():
    """Thousands of single-frame reads, valid and not: headers of every kind,
    masked or not, lengths around the 7-bit boundary, limits around them,
    payloads that are or are not UTF-8.  Whole (where the fast paths may
    answer) and cut after the first byte (where they never do), the outcome
    must be the same, and receive_message must either return exactly the
    message of that outcome or consume nothing."""
    rng = random.Random(6455)
    firsts = [0x81, 0x82, 0x01, 0x02, 0x80, 0x88, 0x89, 0x8A, 0xC1, 0x91, 0x83, 0x00]
    lengths = [0, 1, 2, 3, 4, 7, 60, 124, 125, 126, 127]
    limits = [None, 0, 1, 5, 124, 125, 126]
    texts = ["", "a", "hé", "€uro", "\U0001f600", "plain ascii text"]
    compared = taken = 0
    for _ in range(3000):
        role = rng.choice([Role.SERVER, Role.CLIENT])
        options = {}
        if rng.random() < 0.4:
            options["max_message_size"] = rng.choice(limits)
        masked = rng.random() < 0.5 if rng.random() < 0.2 else role is Role.SERVER  # mostly as the RFC says
        if rng.random() < 0.6:
            payload = (rng.choice(texts) * rng.randint(1, 8)).encode()[: rng.choice(lengths)]
            if rng.random() < 0.2 and payload:
                payload = payload[:-1]  # perhaps a cut multi-byte sequence
        else:
            payload = rng.randbytes(rng.choice(lengths))
        key = rng.randbytes(4)
        body = key + apply_mask(payload, key) if masked else payload
        length = len(payload) if rng.random() < 0.9 else rng.choice(lengths)  # sometimes a lying header
        if length > 125:
            continue  # an extended length needs more header bytes: not a lone small frame anyway
        first = rng.choice((0x81, 0x82)) if rng.random() < 0.5 else rng.choice(firsts)
        data = bytes([first, (0x80 if masked else 0) | length]) + body
        expected = _outcome(make(role, **options), [data[:1], data[1:]])
        assert _outcome(make(role, **options), [data]) == expected, data.hex()
        conn = make(role, **options)
        message = conn.receive_message(data)
        if message is None:
            assert _outcome(conn, [data]) == expected, data.hex()
        else:
            taken += 1
            assert len(expected[0]) == 1 and expected[0][0].data == message, data.hex()
            assert type(message) is (str if data[0] == 0x81 else bytes)
        compared += 1
    assert compared > 2000 and taken > 800  # the fast path was exercised, not skipped


# -- answer_before_failing: the messages before a violation get answered -------


def _message_then_violation():
    """A valid text message, then a frame with a reserved bit, then a ping,
    in one read (Autobahn case 3.2)."""
    return from_client(TEXT, b"Hello") + from_client(TEXT, b"bad", rsv=RSV1) + from_client(PING, b"p")


def test_a_violation_after_messages_is_held_until_fail_pending():
    conn = server(answer_before_failing=True)
    events = conn.receive_data(_message_then_violation())
    assert events == [TextMessage("Hello")]
    assert conn.failure_pending and conn.failure is None
    assert conn.state is OPEN and conn.writable and not conn.should_close_transport
    conn.send_text("Hello")  # the answer, before the failure
    failed = conn.fail_pending()
    assert [type(event) for event in failed] == [ConnectionFailed] and failed[0].code == 1002
    assert not conn.failure_pending and conn.failure is not None
    assert conn.state is CLOSING and conn.should_close_transport and not conn.writable
    out = b"".join(conn.data_to_send())
    parser = FrameParser(expect_masked=False)
    frames = parser.feed(out)
    assert [(opcode, bytes(payload)) for opcode, payload, *_ in frames][0] == (TEXT, b"Hello")
    assert frames[1][0] == CLOSE and int.from_bytes(frames[1][1][:2], "big") == 1002
    assert len(frames) == 2  # the ping after the violation was never read: no pong
    assert conn.fail_pending() == []


def test_without_answer_before_failing_a_violation_fails_at_once():
    conn = server()
    events = conn.receive_data(_message_then_violation())
    assert events[0] == TextMessage("Hello") and isinstance(events[1], ConnectionFailed)
    assert not conn.failure_pending and not conn.writable
    with pytest.raises(InvalidStateError):
        conn.send_text("Hello")


def test_a_violation_with_nothing_before_it_fails_at_once_even_when_answers_may_come_first():
    conn = server(answer_before_failing=True)
    events = conn.receive_data(from_client(TEXT, b"bad", rsv=RSV1))
    assert [type(event) for event in events] == [ConnectionFailed]
    assert not conn.failure_pending and conn.should_close_transport


def test_a_held_failure_comes_with_the_next_read_or_the_eof():
    conn = server(answer_before_failing=True)
    conn.receive_data(_message_then_violation())
    later = conn.receive_data(from_client(TEXT, b"ignored"))
    assert [type(event) for event in later] == [ConnectionFailed]
    assert conn.receive_data(from_client(TEXT, b"ignored")) == []

    conn = server(answer_before_failing=True)
    conn.receive_data(_message_then_violation())
    conn.receive_eof()
    assert conn.failure is not None and conn.state is CLOSED and not conn.failure_pending
    # Nothing can be sent any more: no close frame is queued or recorded as sent.
    assert conn.close_sent is None and conn.data_to_send() == [] and conn.close_code == 1006


def test_no_failure_is_held_once_a_close_frame_was_sent():
    conn = server(answer_before_failing=True)
    conn.close(1000)
    events = conn.receive_data(_message_then_violation())
    assert events[0] == TextMessage("Hello") and isinstance(events[-1], ConnectionFailed)
    assert not conn.failure_pending and conn.should_close_transport


def test_a_close_sent_while_a_failure_is_held_keeps_its_code():
    conn = server(answer_before_failing=True)
    conn.receive_data(_message_then_violation())
    conn.close(1000, "done")
    failed = conn.fail_pending()
    assert [type(event) for event in failed] == [ConnectionFailed]
    assert conn.close_sent == (1000, "done")
    frames = FrameParser(expect_masked=False).feed(b"".join(conn.data_to_send()))
    assert [frame[0] for frame in frames] == [CLOSE]  # one close frame, the application's


@pytest.mark.parametrize(
    "violation",
    [
        from_client(TEXT, b"bad", rsv=RSV1),
        raw_from_client(0x85, b""),  # a reserved opcode
        from_client(CONTINUATION, b"x"),  # nothing to continue
        from_client(TEXT, b"\xff"),  # invalid UTF-8
        from_client(CLOSE, b"\x03"),  # a 1-byte close payload
    ],
)
@pytest.mark.parametrize("split", ["whole", "inside the message", "between the frames"])
def test_every_kind_of_violation_after_a_message_is_held_the_same_way(violation, split):
    """Held when the message completes in the same read as the violation;
    a violation alone in its read fails at once, held or not."""
    message = from_client(BINARY, b"first")
    data = message + violation
    expected_code = _outcome(server(), [violation])[0][-1][1]
    conn = server(answer_before_failing=True)
    if split == "between the frames":
        assert conn.receive_data(message) == [BinaryMessage(b"first")]
        failed = conn.receive_data(violation)
        assert not conn.failure_pending
    else:
        chunks = [data[:3], data[3:]] if split == "inside the message" else [data]
        events = [event for chunk in chunks for event in conn.receive_data(chunk)]
        assert events == [BinaryMessage(b"first")]
        assert conn.failure_pending
        failed = conn.fail_pending()
    assert [(type(event), event.code) for event in failed] == [(ConnectionFailed, expected_code)]
