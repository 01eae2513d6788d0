"""The sans-I/O framers: round trips, every split of the input, limits, malformed input."""

from __future__ import annotations

import array
import random
import struct
import tracemalloc

import pytest

import netkit
from netkit.framing import DelimitedFramer, LengthPrefixFramer

FIXED_HEADERS = ["!B", "!H", "!I", "!Q", "<B", "<H", "<I", "<Q", ">I"]
ALL_HEADERS = [*FIXED_HEADERS, "varint"]
KIB = 1024
MIB = 1024 * KIB


def feed_chunks(framer, data: bytes, cuts) -> list[bytes]:
    """Feed ``data`` cut at the sorted positions ``cuts``; return every frame."""
    frames: list[bytes] = []
    start = 0
    for cut in [*cuts, len(data)]:
        frames += framer.feed(data[start:cut])
        start = cut
    return frames


def random_cuts(rng: random.Random, size: int, max_piece: int) -> list[int]:
    cuts, pos = [], 0
    while True:
        pos += rng.randint(1, max_piece)
        if pos >= size:
            return cuts
        cuts.append(pos)


# -- round trips --------------------------------------------------------------


@pytest.mark.parametrize("header", ALL_HEADERS)
def test_round_trip_sizes_at_the_edges_of_the_limit(header):
    capacity = {"B": 255, "H": 65535}.get(header[-1], 1 << 64)
    limit = min(capacity, 3000)
    framer = LengthPrefixFramer(header, max_frame_size=limit)
    payloads = [b"", b"x", b"a" * (limit - 1), b"b" * limit]
    assert framer.feed(b"".join(framer.encode(p) for p in payloads)) == payloads
    assert framer.at_frame_boundary and framer.buffered_size == 0
    with pytest.raises(netkit.FrameTooLarge) as caught:
        LengthPrefixFramer(header, max_frame_size=limit - 1).feed(framer.encode(b"c" * limit))
    assert (caught.value.value, caught.value.maximum) == (limit, limit - 1)


@pytest.mark.parametrize("header", ["!I", "<Q", "varint"])
def test_round_trip_at_the_default_16_mib_limit(header):
    framer = LengthPrefixFramer(header)
    assert framer.max_frame_size == 16 * MIB
    big = bytes(range(256)) * (16 * MIB // 256)
    assert framer.feed(framer.encode(big[:-1]) + framer.encode(big)) == [big[:-1], big]
    with pytest.raises(netkit.FrameTooLarge):
        framer.feed(framer.header(16 * MIB + 1))


@pytest.mark.parametrize("header,size,expected", [
    ("!B", 200, b"\xc8"), ("<B", 200, b"\xc8"),
    ("!H", 0x0102, b"\x01\x02"), ("<H", 0x0102, b"\x02\x01"),
    ("!I", 0x01020304, b"\x01\x02\x03\x04"), ("<I", 0x01020304, b"\x04\x03\x02\x01"),
    ("!Q", 5, b"\0" * 7 + b"\x05"), ("<Q", 5, b"\x05" + b"\0" * 7),
    ("varint", 0, b"\x00"), ("varint", 127, b"\x7f"), ("varint", 128, b"\x80\x01"),
    ("varint", 300, b"\xac\x02"), ("varint", 2**64 - 1, b"\xff" * 9 + b"\x01"),
])
def test_header_bytes_on_the_wire(header, size, expected):
    assert LengthPrefixFramer(header).header(size) == expected


@pytest.mark.parametrize("header", ALL_HEADERS)
def test_encode_is_header_then_payload_and_parts_do_not_copy(header):
    framer = LengthPrefixFramer(header)
    payload = b"hello frame"
    assert framer.encode(payload) == framer.header(len(payload)) + payload
    head, body = framer.encode_parts(payload)
    assert head == framer.header(len(payload)) and body is payload
    assert framer.encode_many([payload, b"", b"z"]) == framer.encode(payload) + framer.encode(b"") + framer.encode(b"z")


def test_encode_counts_bytes_of_a_memoryview_not_items():
    framer = LengthPrefixFramer("!I")
    view = memoryview(array.array("I", [1, 2, 3]))
    assert framer.header(12) == framer.encode_parts(view)[0]
    assert framer.feed(framer.encode(view)) == [view.tobytes()]
    assert framer.feed(framer.encode(bytearray(b"ab"))) == [b"ab"]


@pytest.mark.parametrize("header,too_big", [("!B", 256), ("<H", 65536), ("!I", 2**32)])
def test_a_payload_too_large_for_the_header_cannot_be_encoded(header, too_big):
    framer = LengthPrefixFramer(header, max_frame_size=2**40)
    with pytest.raises(netkit.FrameTooLarge) as caught:
        framer.header(too_big)
    assert (caught.value.value, caught.value.maximum) == (too_big, too_big - 1)
    with pytest.raises(ValueError):
        framer.header(-1)


@pytest.mark.parametrize("header", ["!B", "<B"])
def test_every_encoder_refuses_a_payload_too_large_for_the_header(header):
    framer = LengthPrefixFramer(header)
    for encode in (framer.encode, framer.encode_parts, lambda p: framer.encode_many([b"ok", p])):
        assert encode(bytes(255))
        with pytest.raises(netkit.FrameTooLarge) as caught:
            encode(bytearray(256))
        assert (caught.value.value, caught.value.maximum) == (256, 255)


def test_varint_header_bounds():
    framer = LengthPrefixFramer("varint")
    with pytest.raises(netkit.FrameTooLarge):
        framer.header(2**64)
    with pytest.raises(ValueError):
        framer.header(-1)


@pytest.mark.parametrize("header", ["!i", "I", "=I", "!L", "leb128", ""])
def test_unsupported_header_formats_are_refused(header):
    with pytest.raises(ValueError, match="unsupported header format"):
        LengthPrefixFramer(header)


@pytest.mark.parametrize("limit", [-1, 1.5, None])
def test_max_frame_size_must_be_a_non_negative_int(limit):
    with pytest.raises(ValueError):
        LengthPrefixFramer(max_frame_size=limit)
    with pytest.raises(ValueError):
        DelimitedFramer(max_frame_size=limit)


def test_feed_accepts_any_bytes_like_object():
    framer = LengthPrefixFramer("!H")
    data = framer.encode_many([b"one", b"two"])
    assert framer.feed(bytearray(data[:4])) + framer.feed(memoryview(data)[4:]) == [b"one", b"two"]
    assert framer.feed(b"") == []


# -- every split of the input ----------------------------------------------------


@pytest.mark.parametrize("header", ALL_HEADERS)
def test_byte_by_byte_and_every_two_way_split(header):
    framer = LengthPrefixFramer(header)
    payloads = [b"", b"a", b"bc" * 70, b"", bytes(range(256)), b"z"]
    if header[-1] == "B":
        payloads = [p[:255] for p in payloads]
    data = framer.encode_many(payloads)
    assert feed_chunks(framer, data, range(1, len(data))) == payloads
    for cut in range(len(data) + 1):
        assert feed_chunks(framer, data, [cut]) == payloads, cut
    assert framer.at_frame_boundary


@pytest.mark.parametrize("header", ALL_HEADERS)
def test_random_chunkings_with_fixed_seeds(header):
    rng = random.Random(f"chunkings-{header}")
    capacity = {"B": 255, "H": 65535}.get(header[-1], 1 << 40)
    sizes = [0, 1, 2, 5, 127, 128, 129, 255, 256, 1000, 3000]
    payloads = [rng.randbytes(min(rng.choice(sizes), capacity)) for _ in range(40)]
    framer = LengthPrefixFramer(header)
    data = framer.encode_many(payloads)
    for round_ in range(100):
        max_piece = rng.choice([2, 3, 7, 64, 300, 5000, len(data)])
        cuts = random_cuts(rng, len(data), max_piece)
        assert feed_chunks(framer, data, cuts) == payloads, (round_, max_piece)
        assert framer.buffered_size == 0


def test_100000_tiny_frames_in_one_feed():
    framer = LengthPrefixFramer("!I")
    payloads = [i.to_bytes(3, "big") for i in range(100_000)] + [b""] * 5
    frames = framer.feed(framer.encode_many(payloads) + b"\0\0")
    assert frames == payloads
    assert type(frames[0]) is bytes
    assert framer.buffered_size == 2 and not framer.at_frame_boundary
    assert framer.feed(b"\0\x01!") == [b"!"]


def test_a_100_mib_frame_in_64_kib_pieces_is_buffered_once():
    """A large frame arriving in pieces costs about twice its size at peak (the
    growing buffer, then the frame handed out), never a copy per piece."""
    size = 100 * MIB
    framer = LengthPrefixFramer("<Q", max_frame_size=size)
    body = bytes(64 * KIB)
    tracemalloc.start()
    try:
        frames = framer.feed(framer.header(size))
        for _ in range(size // len(body)):
            frames += framer.feed(body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [len(f) for f in frames] == [size]
    assert peak < 2.5 * size
    assert framer.buffered_size == 0


# -- limits and malformed headers ------------------------------------------------


def test_a_4_gib_announcement_is_refused_before_any_of_the_body_is_buffered():
    framer = LengthPrefixFramer("!Q")
    tracemalloc.start()
    try:
        with pytest.raises(netkit.FrameTooLarge) as caught:
            framer.feed(struct.pack("!Q", 4 * 1024 * MIB) + b"x" * 1000)
        assert framer.buffered_size == 0
        # The hostile peer keeps streaming: every feed is refused, nothing kept.
        chunk = bytes(64 * KIB)
        for _ in range(256):
            with pytest.raises(netkit.FrameTooLarge) as again:
                framer.feed(chunk)
            assert again.value is caught.value
            assert framer.buffered_size == 0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 * MIB
    exc = caught.value
    assert (exc.value, exc.maximum, exc.limit) == (4 * 1024 * MIB, 16 * MIB, "max_frame_size")
    assert "max_frame_size=16777216" in str(exc)
    assert framer.error is exc
    with pytest.raises(netkit.FrameTooLarge):
        framer.feed_eof()


@pytest.mark.parametrize("header", ALL_HEADERS)
def test_oversize_header_split_byte_by_byte_raises_on_its_last_byte(header):
    framer = LengthPrefixFramer(header, max_frame_size=100)
    ok = framer.encode(b"fine")
    head = framer.header(101)
    for byte in ok + head[:-1]:
        assert framer.feed(bytes([byte])) in ([], [b"fine"])
        assert framer.buffered_size <= 10
    with pytest.raises(netkit.FrameTooLarge):
        framer.feed(head[-1:] + b"body")
    assert framer.buffered_size == 0


def test_frames_before_a_bad_header_are_kept_by_feed_into():
    framer = LengthPrefixFramer("!H", max_frame_size=10)
    frames: list[bytes] = []
    with pytest.raises(netkit.FrameTooLarge):
        framer.feed_into(framer.encode(b"a") + framer.encode(b"bb") + framer.header(11), frames)
    assert frames == [b"a", b"bb"]
    with pytest.raises(netkit.FrameTooLarge):
        framer.feed(framer.encode(b"c"))


@pytest.mark.parametrize("bad,why", [
    (b"\xff" * 10, "longer than 10 bytes"),
    (b"\x80" * 10 + b"\x00", "longer than 10 bytes"),
    (b"\xff" * 9 + b"\x02", "does not fit in 64 bits"),
    (b"\x80" * 9 + b"\x7f", "does not fit in 64 bits"),
])
@pytest.mark.parametrize("split", ["whole", "bytewise", "after-a-frame"])
def test_malformed_varints_are_protocol_errors(bad, why, split):
    framer = LengthPrefixFramer("varint", max_frame_size=2**64 - 1)
    with pytest.raises(netkit.ProtocolError, match=why) as caught:
        if split == "whole":
            framer.feed(bad)
        elif split == "bytewise":
            for byte in bad:
                framer.feed(bytes([byte]))
        else:
            framer.feed(b"\x01A" + bad[:3])
            framer.feed(bad[3:])
    assert not isinstance(caught.value, netkit.FrameTooLarge)
    with pytest.raises(netkit.ProtocolError):
        framer.feed(b"\x00")


def test_largest_varint_decodes_and_non_minimal_varints_are_accepted():
    framer = LengthPrefixFramer("varint", max_frame_size=2**64 - 1)
    assert framer.feed(b"\x80\x00" + b"\x81\x80\x00x") == [b"", b"x"]
    assert framer.feed(b"\xff" * 9 + b"\x01") == []
    assert not framer.at_frame_boundary and framer.buffered_size == 0
    with pytest.raises(netkit.IncompleteReadError) as caught:
        framer.feed_eof()
    assert caught.value.expected == 2**64 - 1
    with pytest.raises(netkit.FrameTooLarge):
        LengthPrefixFramer("varint").feed(b"\xff" * 9 + b"\x01")


# -- end of stream -----------------------------------------------------------------


@pytest.mark.parametrize("header", ALL_HEADERS)
def test_feed_eof(header):
    framer = LengthPrefixFramer(header)
    framer.feed_eof()  # nothing buffered: a clean end
    framer.feed(framer.encode(b"whole") + framer.header(200)[:1])
    with pytest.raises(netkit.IncompleteReadError) as caught:
        framer.feed_eof()
    if header[-1] == "B":  # a one-byte header is whole: the body is missing
        assert (caught.value.partial, caught.value.expected) == (b"", 200)
    else:
        assert caught.value.partial == framer.header(200)[:1]
        assert caught.value.expected == (None if header == "varint" else struct.calcsize(header))
    framer = LengthPrefixFramer(header)
    framer.feed(framer.header(200) + b"abc")
    with pytest.raises(netkit.IncompleteReadError) as caught:
        framer.feed_eof()
    assert (caught.value.partial, caught.value.expected) == (b"abc", 200)


def test_a_varint_header_cut_short_has_no_known_size():
    framer = LengthPrefixFramer("varint")
    framer.feed(b"\x80")
    with pytest.raises(netkit.IncompleteReadError) as caught:
        framer.feed_eof()
    assert (caught.value.partial, caught.value.expected) == (b"\x80", None)


# -- the delimited framer --------------------------------------------------------------


def reference_split(data: bytes, delimiter: bytes, strip: bool) -> list[bytes]:
    pieces = data.split(delimiter)[:-1]
    return pieces if strip else [p + delimiter for p in pieces]


@pytest.mark.parametrize("delimiter", [b"\n", b"\r\n", b"\0", b"aab", b"--END--"])
@pytest.mark.parametrize("strip", [True, False])
def test_delimited_every_split_agrees_with_bytes_split(delimiter, strip):
    rng = random.Random(f"delimited-{delimiter!r}-{strip}")
    # A small alphabet made of the delimiter's own bytes makes near-misses and
    # overlaps (b"aaab" for b"aab") common.
    alphabet = sorted(set(delimiter + b"xa\r"))
    data = b"".join(
        bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) + rng.choice([delimiter, b""])
        for _ in range(40)
    ) + delimiter
    expected = reference_split(data, delimiter, strip)
    assert len(expected) > 5
    framer = DelimitedFramer(delimiter, strip=strip)
    assert framer.feed(data) == expected
    assert feed_chunks(framer, data, range(1, len(data))) == expected
    for cut in range(len(data)):
        assert feed_chunks(framer, data, [cut]) == expected
    for _ in range(200):
        cuts = random_cuts(rng, len(data), rng.choice([1, 2, 3, 5, 17, 100]))
        assert feed_chunks(framer, data, cuts) == expected
    assert framer.at_frame_boundary


def test_delimited_basics():
    framer = DelimitedFramer()
    assert (framer.delimiter, framer.max_frame_size, framer.strip) == (b"\n", 64 * KIB, True)
    assert framer.feed(b"one\ntw") == [b"one"]
    assert framer.buffered_size == 2
    assert framer.feed(b"o\n\nthree\n") == [b"two", b"", b"three"]
    crlf = DelimitedFramer(b"\r\n", strip=False)
    assert crlf.feed(b"a\rb\r") == []
    assert crlf.feed(b"\nc\n\r\n") == [b"a\rb\r\n", b"c\n\r\n"]


@pytest.mark.parametrize("delimiter", [b"\n", b"\r\n", b"<END>"])
def test_delimited_max_frame_size_excludes_the_delimiter(delimiter):
    limit = 50
    fits = b"x" * limit + delimiter
    too_long = b"y" * (limit + 1) + delimiter
    for strip in (True, False):
        framer = DelimitedFramer(delimiter, max_frame_size=limit, strip=strip)
        assert feed_chunks(framer, fits * 3, range(7, 3 * len(fits), 7)) == [fits[: limit if strip else None]] * 3
    for cuts in ([], range(1, len(too_long)), [limit], [limit + 1], [limit + 2]):
        framer = DelimitedFramer(delimiter, max_frame_size=limit)
        with pytest.raises(netkit.FrameTooLarge) as caught:
            feed_chunks(framer, fits + too_long, [len(fits) + c for c in cuts])
        assert caught.value.maximum == limit and caught.value.value > limit
        assert framer.buffered_size == 0


@pytest.mark.parametrize("delimiter", [b"\n", b"\r\n", b"<END>"])
def test_delimited_line_without_end_is_refused_without_buffering_further(delimiter):
    limit = 1000
    framer = DelimitedFramer(delimiter, max_frame_size=limit)
    piece = b"z" * 7
    with pytest.raises(netkit.FrameTooLarge):
        for _ in range(10_000):
            framer.feed(piece)
            assert framer.buffered_size <= limit + len(delimiter) - 1
    with pytest.raises(netkit.FrameTooLarge):
        framer.feed(delimiter)
    # One chunk just long enough to prove the line too long is refused at once.
    framer = DelimitedFramer(delimiter, max_frame_size=limit)
    assert framer.feed(b"z" * (limit + len(delimiter) - 1)) == []
    framer = DelimitedFramer(delimiter, max_frame_size=limit)
    with pytest.raises(netkit.FrameTooLarge):
        framer.feed(b"z" * (limit + len(delimiter)))
    # A huge chunk is refused at once and not copied into the buffer.
    framer = DelimitedFramer(delimiter, max_frame_size=limit)
    with pytest.raises(netkit.FrameTooLarge):
        framer.feed(b"ok" + delimiter + b"z" * (10 * MIB))
    assert framer.buffered_size == 0


@pytest.mark.parametrize("delimiter", [b"\n", b"\r\n", b"<END>"])
def test_delimited_frame_too_large_names_the_size_of_that_frame_seen_so_far(delimiter):
    """However the stream is cut, the error gives the size of the long frame
    as far as it has arrived: whole once its delimiter is in, never counting
    its delimiter or the frames after it."""
    limit = 10
    start = len(b"ok" + delimiter)
    long_frame = b"x" * 20
    stream = b"ok" + delimiter + long_frame + delimiter + b"next" + delimiter
    for cut in range(1, len(stream)):
        framer = DelimitedFramer(delimiter, max_frame_size=limit)
        fed = 0
        with pytest.raises(netkit.FrameTooLarge) as caught:
            for chunk in (stream[:cut], stream[cut:]):
                fed += len(chunk)
                framer.feed(chunk)
        seen = fed - start  # bytes of the long frame and after it, up to the failing chunk's end
        if seen >= len(long_frame) + len(delimiter):
            expected = len(long_frame)  # its delimiter arrived: its size is known
        else:
            expected = seen  # no delimiter yet: what arrived of it (a part of one included)
        assert caught.value.value == expected, cut
        assert str(caught.value) == f"frame of {expected} bytes exceeds max_frame_size={limit} (local)"


def test_delimited_frames_before_an_overlong_line_are_kept():
    framer = DelimitedFramer(max_frame_size=4)
    frames: list[bytes] = []
    with pytest.raises(netkit.FrameTooLarge):
        framer.feed_into(b"ab\ncd\nefghij", frames)
    assert frames == [b"ab", b"cd"]


def test_delimited_eof_and_encoding():
    framer = DelimitedFramer(b"\r\n")
    framer.feed_eof()
    framer.feed(b"done\r\nhalf\r")
    with pytest.raises(netkit.IncompleteReadError) as caught:
        framer.feed_eof()
    assert (caught.value.partial, caught.value.expected) == (b"half\r", None)
    assert framer.encode(b"hi") == b"hi\r\n"
    payload = b"big"
    assert framer.encode_parts(payload)[0] is payload
    assert framer.encode_many([b"a", b"", bytearray(b"c")]) == b"a\r\n\r\nc\r\n"
    assert framer.encode_many([]) == b""
    assert framer.encode(memoryview(b"mv")) == b"mv\r\n"
    for bad in (b"a\r\nb", memoryview(b"x\r\n")):
        with pytest.raises(ValueError, match="contains the delimiter"):
            framer.encode(bad)
    with pytest.raises(ValueError):
        framer.encode_many([b"fine", b"not\r\nfine"])


@pytest.mark.parametrize("delimiter", [b"", "\n", None])
def test_delimiter_must_be_non_empty_bytes(delimiter):
    with pytest.raises(ValueError):
        DelimitedFramer(delimiter)


def test_framers_are_framers():
    for framer in (LengthPrefixFramer(), DelimitedFramer()):
        assert isinstance(framer, netkit.framing.Framer)
        assert framer.error is None
        assert repr(framer).startswith(type(framer).__name__)
