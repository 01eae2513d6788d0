"""Frame codec: masking, every length boundary, every split of the input, every error."""

import random

import pytest

from netkit.errors import FrameTooLarge, MessageTooBig, ProtocolError
from netkit.websocket.frames import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    RSV1,
    RSV2,
    RSV3,
    TEXT,
    Frame,
    FrameParser,
    Opcode,
    apply_mask,
    encode_header,
    serialize_frame,
)

KEY = b"\x37\xfa\x21\x3d"  # RFC 6455 §5.7's example key

# Frame lengths where the encoding changes (RFC 6455 §5.2), and around the
# unmasking strategies' thresholds.
BOUNDARY_LENGTHS = [0, 1, 3, 4, 5, 125, 126, 127, 128, 129, 2047, 2048, 65535, 65536, 65537, 131075]


def naive_mask(data, key):
    """The RFC's definition, one byte at a time: the reference for the fast code."""
    return bytes(octet ^ key[index % 4] for index, octet in enumerate(data))


def reference_frame(opcode, payload, *, fin=True, rsv=0, key=None):
    """A frame encoded straight from RFC 6455 §5.2, independently of the codec."""
    first = (0x80 if fin else 0) | rsv | opcode
    mask_bit = 0x80 if key is not None else 0
    n = len(payload)
    if n < 126:
        head = bytes([first, mask_bit | n])
    elif n < 65536:
        head = bytes([first, mask_bit | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([first, mask_bit | 127]) + n.to_bytes(8, "big")
    if key is None:
        return head + payload
    return head + key + naive_mask(payload, key)


def payload_of(length, seed=0):
    return random.Random(seed).randbytes(length)


def parse_all(data, *, expect_masked, sizes=None, **options):
    """Feed ``data`` cut into pieces of ``sizes`` (whole if None); return frames and parser."""
    parser = FrameParser(expect_masked=expect_masked, **options)
    frames = []
    if sizes is None:
        frames.extend(parser.feed(data))
    else:
        position = 0
        for size in sizes:
            frames.extend(parser.feed(data[position : position + size]))
            position += size
        assert position >= len(data)
    return frames, parser


def random_sizes(seed, total, biggest):
    rng = random.Random(seed)
    sizes = []
    while sum(sizes) < total:
        sizes.append(rng.randint(1, biggest))
    return sizes


# Opcodes and masking


def test_opcodes_are_the_rfcs():
    assert [int(op) for op in Opcode] == [0x0, 0x1, 0x2, 0x8, 0x9, 0xA]
    assert (CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG) == tuple(Opcode)


@pytest.mark.parametrize("length", list(range(0, 140)) + BOUNDARY_LENGTHS)
def test_apply_mask_matches_the_definition(length):
    data = payload_of(length, seed=length)
    key = payload_of(4, seed=-length)
    masked = apply_mask(data, key)
    assert isinstance(masked, bytes)
    assert masked == naive_mask(data, key)
    assert apply_mask(masked, key) == data
    assert apply_mask(bytearray(data), key) == masked
    assert apply_mask(memoryview(data), key) == masked


def test_apply_mask_with_a_zero_key_is_the_identity():
    data = payload_of(5000)
    assert apply_mask(data, b"\x00\x00\x00\x00") == data


# The RFC's examples (§5.7)


RFC_EXAMPLES = [
    (b"\x81\x05\x48\x65\x6c\x6c\x6f", False, [Frame(TEXT, b"Hello")]),
    (b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", True, [Frame(TEXT, b"Hello")]),
    (b"\x01\x03\x48\x65\x6c\x80\x02\x6c\x6f", False, [Frame(TEXT, b"Hel", False), Frame(CONTINUATION, b"lo")]),
    (b"\x89\x05\x48\x65\x6c\x6c\x6f", False, [Frame(PING, b"Hello")]),
    (b"\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", True, [Frame(PONG, b"Hello")]),
    (b"\x82\x7e\x01\x00" + bytes(256), False, [Frame(BINARY, bytes(256))]),
    (b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00" + bytes(65536), False, [Frame(BINARY, bytes(65536))]),
]


@pytest.mark.parametrize("data, masked, frames", RFC_EXAMPLES)
def test_rfc_examples_parse(data, masked, frames):
    assert parse_all(data, expect_masked=masked)[0] == frames


@pytest.mark.parametrize("data, masked, frames", RFC_EXAMPLES)
def test_rfc_examples_serialize(data, masked, frames):
    key = KEY if masked else None
    assert b"".join(frame.serialize(mask_key=key) for frame in frames) == data


# Headers


@pytest.mark.parametrize(
    "length, header",
    [
        (0, b"\x82\x00"),
        (125, b"\x82\x7d"),
        (126, b"\x82\x7e\x00\x7e"),
        (65535, b"\x82\x7e\xff\xff"),
        (65536, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
        (2**32, b"\x82\x7f\x00\x00\x00\x01\x00\x00\x00\x00"),
        (2**63 - 1, b"\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff"),
    ],
)
def test_encode_header_uses_the_shortest_length(length, header):
    assert encode_header(BINARY, length) == header
    masked = encode_header(BINARY, length, mask_key=KEY)
    assert masked == bytes([header[0], header[1] | 0x80]) + header[2:] + KEY


def test_encode_header_bits():
    assert encode_header(TEXT, 0, fin=False) == b"\x01\x00"
    assert encode_header(CONTINUATION, 0, rsv=RSV1 | RSV3) == b"\xd0\x00"
    assert encode_header(PING, 125) == b"\x89\x7d"


@pytest.mark.parametrize(
    "args, options",
    [
        ((3, 0), {}),
        ((0xB, 0), {}),
        ((PING, 126), {}),
        ((CLOSE, 0), {"fin": False}),
        ((TEXT, 0), {"rsv": 0x80}),
        ((TEXT, 0), {"rsv": 1}),
        ((TEXT, 2**63), {}),
        ((TEXT, 0), {"mask_key": b"abc"}),
    ],
)
def test_encode_header_refuses_invalid_frames(args, options):
    with pytest.raises(ValueError):
        encode_header(*args, **options)


def test_serialize_frame_masks_with_a_fresh_random_key():
    payload = b"x" * 40
    first = serialize_frame(BINARY, payload, mask=True)
    second = serialize_frame(BINARY, payload, mask=True)
    assert first[1] & 0x80 and first[2:6] != second[2:6]
    for data in (first, second):
        assert parse_all(data, expect_masked=True)[0] == [Frame(BINARY, payload)]


def test_serialize_frame_unmasked_and_with_a_given_key():
    assert serialize_frame(TEXT, b"Hello") == b"\x81\x05Hello"
    assert serialize_frame(TEXT, b"Hello", mask_key=KEY) == RFC_EXAMPLES[1][0]
    assert serialize_frame(BINARY, memoryview(b"ab"), fin=False) == b"\x02\x02ab"


# Parsing at every boundary, whole, byte by byte and in random chunks


def boundary_stream(masked):
    frames = [Frame(BINARY if n % 2 else TEXT, payload_of(n, seed=n)) for n in BOUNDARY_LENGTHS]
    frames.insert(3, Frame(PING, b"ping"))
    frames.append(Frame(PONG, b""))
    data = b"".join(
        reference_frame(f.opcode, f.payload, key=payload_of(4, seed=i) if masked else None)
        for i, f in enumerate(frames)
    )
    return frames, data


@pytest.mark.parametrize("masked", [True, False])
def test_parse_boundaries_whole(masked):
    frames, data = boundary_stream(masked)
    parsed, parser = parse_all(data, expect_masked=masked)
    assert parsed == frames
    assert parser.error is None and parser.buffered == 0
    assert all(type(frame.payload) is bytes for frame in parsed)


@pytest.mark.parametrize("masked", [True, False])
def test_parse_boundaries_byte_by_byte(masked):
    frames, data = boundary_stream(masked)
    parsed, parser = parse_all(data, expect_masked=masked, sizes=[1] * len(data))
    assert parsed == frames and parser.error is None


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("masked", [True, False])
def test_parse_boundaries_in_random_chunks(masked, seed):
    frames, data = boundary_stream(masked)
    parsed, parser = parse_all(data, expect_masked=masked, sizes=random_sizes(seed, len(data), 3000))
    assert parsed == frames and parser.error is None


def pieces_to_frames(pieces):
    """Reassemble split_partial output into whole frames, checking the pieces
    look like a sender's fragmentation: a first piece, then continuations."""
    frames = []
    current = None
    for piece in pieces:
        if current is None:
            current = [piece.opcode, bytearray(piece.payload), piece.fin, piece.rsv]
        else:
            assert piece.opcode == CONTINUATION and piece.rsv == 0
            current[1] += piece.payload
            current[2] = piece.fin
        if piece.opcode >= CLOSE or piece.fin:
            frames.append(Frame(current[0], bytes(current[1]), current[2], current[3]))
            current = None
    assert current is None, "a frame was left open"
    return frames


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("masked", [True, False])
def test_split_partial_in_random_chunks(masked, seed):
    frames, data = boundary_stream(masked)
    parser = FrameParser(expect_masked=masked, split_partial=True)
    pieces = []
    position = 0
    for size in random_sizes(seed, len(data), 700):
        pieces.extend(parser.feed(data[position : position + size]))
        position += size
        # Nothing but a header or a control frame is ever buffered.
        assert parser.buffered <= 14 + 125
    assert parser.error is None
    assert pieces_to_frames(pieces) == frames


@pytest.mark.parametrize("masked", [True, False])
def test_split_partial_byte_by_byte(masked):
    payload = payload_of(300)
    data = reference_frame(TEXT, payload, fin=False, rsv=RSV1, key=KEY if masked else None)
    data += reference_frame(PING, b"p", key=KEY if masked else None)
    data += reference_frame(CONTINUATION, payload[:7], key=KEY if masked else None)
    pieces, parser = parse_all(data, expect_masked=masked, sizes=[1] * len(data), split_partial=True, allowed_rsv=RSV1)
    assert parser.error is None
    # One piece per payload byte; the ping whole between the two frames.
    assert len(pieces) == 300 + 1 + 7
    assert pieces[0] == Frame(TEXT, payload[:1], False, RSV1)
    assert all(piece.opcode == CONTINUATION and not piece.fin for piece in pieces[1:300])
    assert pieces[300] == Frame(PING, b"p")
    assert pieces[-1] == Frame(CONTINUATION, payload[6:7], True)
    assert b"".join(piece.payload for piece in pieces[:300]) == payload


def test_split_partial_waits_for_the_payload_before_the_first_piece():
    parser = FrameParser(expect_masked=True, split_partial=True)
    data = reference_frame(BINARY, b"abcdef", key=KEY)
    assert parser.feed(data[:6]) == []  # header and key, no payload yet
    assert parser.feed(data[6:8]) == [Frame(BINARY, b"ab", False)]
    assert parser.feed(data[8:] + reference_frame(BINARY, b"z", key=KEY)) == [
        Frame(CONTINUATION, b"cdef", True),
        Frame(BINARY, b"z"),
    ]


def test_split_partial_returns_complete_frames_whole():
    frames, data = boundary_stream(True)
    parsed, _ = parse_all(data, expect_masked=True, split_partial=True)
    assert parsed == frames


def test_a_2_to_the_32_byte_frame_is_judged_from_its_header():
    header = encode_header(BINARY, 2**32, mask_key=KEY)
    # Unlimited, whole frames: the header is consumed into the buffer, waiting.
    parser = FrameParser(expect_masked=True, max_message_size=None)
    assert parser.feed(header) == [] and parser.error is None
    # Streaming: pieces flow through without the frame ever being buffered.
    parser = FrameParser(expect_masked=True, max_message_size=None, split_partial=True)
    chunk = payload_of(4096)
    assert parser.feed(header + apply_mask(chunk, KEY)) == [Frame(BINARY, chunk, False)]
    assert parser.buffered == 0
    # Limited: refused from the header alone, with 1009.
    parser = FrameParser(expect_masked=True, max_frame_size=2**32 - 1)
    assert parser.feed(header) == []
    assert isinstance(parser.error, FrameTooLarge) and parser.error.close_code == 1009
    assert parser.error.value == 2**32


def test_default_message_limit_is_1_mib():
    parser = FrameParser(expect_masked=False)
    parser.feed(encode_header(BINARY, 2**20, fin=False))
    assert parser.error is None
    parser.feed(bytes(2**20) + encode_header(CONTINUATION, 1))
    assert isinstance(parser.error, MessageTooBig) and parser.error.maximum == 2**20


def test_non_minimal_lengths_are_accepted():
    data = b"\x82\x7e\x00\x05hello" + b"\x82\x7f" + (5).to_bytes(8, "big") + b"hello"
    assert parse_all(data, expect_masked=False)[0] == [Frame(BINARY, b"hello")] * 2


def test_feed_takes_any_bytes_like_object():
    data = reference_frame(BINARY, b"abc", key=KEY) * 2
    parser = FrameParser(expect_masked=True)
    assert parser.feed(bytearray(data[:5])) == []
    assert parser.feed(memoryview(data)[5:]) == [Frame(BINARY, b"abc")] * 2
    assert parser.feed(b"") == []


def test_partial_data_is_buffered_and_counted():
    parser = FrameParser(expect_masked=False)
    assert parser.feed(b"\x81\x05Hel") == []
    assert parser.buffered == 5
    assert parser.feed(b"lo\x81") == [Frame(TEXT, b"Hello")]
    assert parser.buffered == 1


def test_fragmented_message_with_interleaved_control_frames():
    data = (
        reference_frame(TEXT, b"fra", fin=False)
        + reference_frame(PING, b"1")
        + reference_frame(CONTINUATION, b"gme", fin=False)
        + reference_frame(PONG, b"2")
        + reference_frame(CLOSE, b"\x03\xe8")
        + reference_frame(CONTINUATION, b"nted")
        + reference_frame(BINARY, b"next")
    )
    frames, parser = parse_all(data, expect_masked=False, sizes=[1] * len(data))
    assert [frame.opcode for frame in frames] == [TEXT, PING, CONTINUATION, PONG, CLOSE, CONTINUATION, BINARY]
    assert [frame.fin for frame in frames] == [False, True, False, True, True, True, True]
    assert parser.error is None


def test_rsv_bits_pass_through_when_allowed():
    data = reference_frame(TEXT, b"x", rsv=RSV1) + reference_frame(BINARY, b"y", rsv=RSV1 | RSV2)
    frames, parser = parse_all(data, expect_masked=False, allowed_rsv=RSV1 | RSV2)
    assert frames == [Frame(TEXT, b"x", True, RSV1), Frame(BINARY, b"y", True, RSV1 | RSV2)]
    assert parser.error is None


# Every protocol error: the close code, the message, and the frames before it


def assert_fails(data, expect_masked, error_type, close_code, match, **options):
    prefix = reference_frame(TEXT, b"ok", key=KEY if expect_masked else None)
    for sizes in (None, [1] * (len(prefix) + len(data))):
        frames, parser = parse_all(prefix + data, expect_masked=expect_masked, sizes=sizes, **options)
        assert frames == [Frame(TEXT, b"ok")], "frames before the error are returned"
        assert isinstance(parser.error, error_type)
        assert parser.error.close_code == close_code
        assert match in str(parser.error)
        # After the error, input is ignored.
        assert parser.feed(prefix) == []
        assert parser.buffered == 0


@pytest.mark.parametrize("rsv", [RSV1, RSV2, RSV3, RSV1 | RSV2 | RSV3])
def test_reserved_bits_without_extension(rsv):
    assert_fails(reference_frame(TEXT, b"x", rsv=rsv), False, ProtocolError, 1002, "reserved bits")


def test_reserved_bit_not_allowed_by_the_extension():
    assert_fails(reference_frame(TEXT, b"x", rsv=RSV2), False, ProtocolError, 1002, "reserved bits", allowed_rsv=RSV1)


def test_reserved_bits_on_control_frames():
    assert_fails(reference_frame(PING, b"x", rsv=RSV1), False, ProtocolError, 1002, "reserved bits")


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_unknown_opcodes(opcode):
    assert_fails(reference_frame(opcode, b""), False, ProtocolError, 1002, f"unknown opcode {opcode:#x}")


@pytest.mark.parametrize("opcode", [CLOSE, PING, PONG])
def test_fragmented_control_frames(opcode):
    assert_fails(reference_frame(opcode, b"x", fin=False), False, ProtocolError, 1002, "cannot be fragmented")


@pytest.mark.parametrize("opcode", [CLOSE, PING, PONG])
@pytest.mark.parametrize("length", [126, 65536])
def test_control_frames_over_125_bytes(opcode, length):
    assert_fails(reference_frame(opcode, bytes(length)), False, ProtocolError, 1002, "at most 125 bytes")


def test_control_frame_of_125_bytes_is_fine():
    assert parse_all(reference_frame(PING, bytes(125)), expect_masked=False)[0] == [Frame(PING, bytes(125))]


def test_unmasked_frame_to_a_server():
    assert_fails(reference_frame(BINARY, b"x"), True, ProtocolError, 1002, "not masked")


def test_masked_frame_to_a_client():
    assert_fails(reference_frame(BINARY, b"x", key=KEY), False, ProtocolError, 1002, "masked")


def test_64_bit_length_with_the_top_bit_set():
    data = b"\x82\x7f\x80" + bytes(7)
    assert_fails(data, False, ProtocolError, 1002, "most significant bit")


def test_continuation_without_a_message():
    assert_fails(reference_frame(CONTINUATION, b"x"), False, ProtocolError, 1002, "no message to continue")


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_new_message_inside_a_fragmented_one(opcode):
    data = reference_frame(BINARY, b"a", fin=False) + reference_frame(PING, b"") + reference_frame(opcode, b"b")
    frames, parser = parse_all(data, expect_masked=False)
    assert frames == [Frame(BINARY, b"a", False), Frame(PING, b"")]
    assert parser.error.close_code == 1002
    assert "inside a fragmented message" in str(parser.error)


def test_frame_size_limit_from_the_header_alone():
    parser = FrameParser(expect_masked=True, max_frame_size=100)
    assert parser.feed(reference_frame(BINARY, bytes(100), key=KEY)) == [Frame(BINARY, bytes(100))]
    assert parser.feed(encode_header(BINARY, 101, mask_key=KEY)) == []
    assert isinstance(parser.error, FrameTooLarge)
    assert parser.error.close_code == 1009
    assert str(parser.error) == "frame of 101 bytes exceeds max_frame_size=100 (local)"


def test_message_size_limit_across_fragments():
    parser = FrameParser(expect_masked=False, max_message_size=10)
    data = (
        reference_frame(TEXT, b"12345", fin=False)
        + reference_frame(PING, bytes(100))  # control frames do not count
        + reference_frame(CONTINUATION, b"67890", fin=False)
        + reference_frame(CONTINUATION, b"", fin=True)
        + reference_frame(BINARY, bytes(10))
    )
    assert len(parser.feed(data)) == 5 and parser.error is None
    # The fragment that would make the message 11 bytes is refused from its header.
    assert len(parser.feed(reference_frame(TEXT, b"12345", fin=False) + b"\x00\x06")) == 1
    assert isinstance(parser.error, MessageTooBig)
    assert parser.error.close_code == 1009
    assert str(parser.error) == "message of 11 bytes exceeds max_message_size=10 (local)"


def test_single_frame_message_over_the_message_limit():
    assert_fails(encode_header(BINARY, 11), False, MessageTooBig, 1009, "max_message_size=10", max_message_size=10)


def test_frame_limit_is_reported_before_the_message_limit():
    parser = FrameParser(expect_masked=False, max_frame_size=5, max_message_size=8)
    parser.feed(encode_header(BINARY, 9))
    assert isinstance(parser.error, FrameTooLarge)
    parser = FrameParser(expect_masked=False, max_frame_size=5, max_message_size=8)
    parser.feed(reference_frame(BINARY, b"12345", fin=False) + encode_header(CONTINUATION, 4))
    assert isinstance(parser.error, MessageTooBig)


def test_split_partial_limits_still_come_from_headers():
    parser = FrameParser(expect_masked=False, max_message_size=10, split_partial=True)
    assert parser.feed(encode_header(BINARY, 8, fin=False) + b"1234") == [Frame(BINARY, b"1234", False)]
    assert parser.feed(b"5678" + encode_header(CONTINUATION, 3)) == [Frame(CONTINUATION, b"5678", False)]
    assert isinstance(parser.error, MessageTooBig)
