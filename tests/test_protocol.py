"""The protocol's framing and payloads, with property-based tests of the decoder."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyml.firmware import protocol
from tinyml.firmware.protocol import (
    DeviceInfo,
    Frame,
    FrameDecoder,
    MessageType,
    ProtocolError,
    Status,
    TensorSpec,
)

# A decoder that hangs fails here instead of stalling the suite.
pytestmark = pytest.mark.timeout(120)

payloads = st.binary(max_size=protocol.MAX_PAYLOAD_BYTES)
frames = st.builds(Frame, type=st.integers(0, 255), seq=st.integers(0, 255), payload=payloads)
fast = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_crc_is_ccitt_false() -> None:
    assert protocol.crc16(b"123456789") == 0x29B1


@fast
@given(st.binary(max_size=1000))
def test_cobs_round_trip_and_removes_every_zero(data: bytes) -> None:
    encoded = protocol.cobs_encode(data)
    assert 0 not in encoded
    assert len(encoded) <= len(data) + len(data) // 254 + 1
    assert protocol.cobs_decode(encoded) == data


@fast
@given(frames)
def test_frame_round_trip_within_limits(frame: Frame) -> None:
    wire = protocol.encode_frame(frame)
    assert wire[0] == 0 and wire[-1] == 0 and 0 not in wire[1:-1]
    assert len(wire) <= len(frame.payload) + protocol.WIRE_OVERHEAD_BYTES
    assert len(wire) - 2 <= protocol.MAX_ENCODED_BYTES
    assert protocol.decode_frame(wire[1:-1]) == frame


def test_payload_over_the_limit_is_refused() -> None:
    with pytest.raises(ValueError):
        protocol.encode_frame(Frame(MessageType.INPUT, 1, bytes(protocol.MAX_PAYLOAD_BYTES + 1)))


@fast
@given(st.binary(max_size=2000))
def test_decode_frame_raises_only_protocol_errors(data: bytes) -> None:
    try:
        protocol.decode_frame(data)
    except ProtocolError:
        pass


@fast
@given(st.lists(st.binary(max_size=600), max_size=8))
def test_decoder_never_raises_on_random_streams(chunks: list[bytes]) -> None:
    decoder = FrameDecoder()
    for chunk in chunks:
        for frame in decoder.feed(chunk):
            assert isinstance(frame, Frame)


@fast
@given(st.lists(st.tuples(st.binary(max_size=300), frames), min_size=1, max_size=6), st.integers(1, 64))
def test_decoder_finds_every_frame_after_any_garbage(items: list[tuple[bytes, Frame]], split: int) -> None:
    stream = b"".join(garbage + protocol.encode_frame(frame) for garbage, frame in items)
    decoder = FrameDecoder()
    found: list[Frame] = []
    for start in range(0, len(stream), split):  # arbitrary read boundaries
        found += decoder.feed(stream[start : start + split])
    expected = iter(found)
    assert all(any(frame == got for got in expected) for _, frame in items), "a sent frame went missing"


@fast
@given(frames, st.data())
def test_corrupted_frame_is_dropped_and_the_next_one_read(frame: Frame, data: st.DataObject) -> None:
    wire = bytearray(protocol.encode_frame(frame))
    kind = data.draw(st.sampled_from(["flip", "drop", "truncate"]))
    position = data.draw(st.integers(1, len(wire) - 2))
    if kind == "flip":
        wire[position] ^= data.draw(st.integers(1, 255))
    elif kind == "drop":
        del wire[position]
    else:
        del wire[position:-1]
    follower = Frame(MessageType.INFO, (frame.seq + 1) & 0xFF, b"next")
    decoder = FrameDecoder()
    found = decoder.feed(bytes(wire) + protocol.encode_frame(follower))
    assert found[-1] == follower
    # CRC-16 catches every error of up to three bits and every single-byte change or loss
    if kind == "flip" and wire[position] != 0:
        assert frame not in found[:-1]


def test_decoder_reports_why_a_frame_was_dropped() -> None:
    decoder = FrameDecoder()
    wire = bytearray(protocol.encode_frame(Frame(MessageType.INFO, 1, b"abc")))
    wire[wire.index(b"abc") + 1] ^= 0x01
    assert decoder.feed(bytes(wire)) == []
    assert isinstance(decoder.last_error, protocol.ChecksumError)
    decoder.feed(b"\x00" + bytes(range(1, 256)) * 2 + b"\x00")
    assert isinstance(decoder.last_error, protocol.FrameError)
    decoder.feed(b"\x00\x05abc")
    assert decoder.partial


def test_decoder_keeps_text_before_the_first_frame() -> None:
    decoder = FrameDecoder()
    frame = Frame(MessageType.HELLO | protocol.RESPONSE_BIT, 1, b"\x01")
    assert decoder.feed(b"tinyml ready\r\n" + protocol.encode_frame(frame)) == [frame]
    assert bytes(decoder.text) == b"tinyml ready\r\n"


INFO = DeviceInfo(
    protocol_version=1,
    firmware_version="1.2.3",
    board_id="nano33ble_sense",
    model_hash="0123456789abcdef",
    arena_used_bytes=12345,
    rx_buffer_bytes=64,
    input=TensorSpec("int8", (1, 32, 32, 1), 0.0039, -128),
    output=TensorSpec("int8", (1, 10), 0.00390625, -128),
    label_count=3,
)


def test_info_round_trip() -> None:
    decoded = protocol.unpack_info(protocol.pack_info(INFO))
    assert decoded.model_hash == INFO.model_hash and decoded.board_id == INFO.board_id
    assert decoded.input.shape == INFO.input.shape and decoded.output.zero_point == -128
    assert decoded.input.scale == pytest.approx(0.0039)
    assert decoded.arena_used_bytes == 12345 and decoded.label_count == 3
    assert decoded.input.byte_size == 1024


@fast
@given(st.binary(max_size=300))
def test_payload_parsers_raise_only_protocol_errors(data: bytes) -> None:
    for parse in (protocol.unpack_info, protocol.unpack_labels, protocol.unpack_error):
        try:
            parse(data)
        except ProtocolError:
            pass


@given(st.lists(st.text(max_size=60), max_size=40))
@settings(max_examples=100, deadline=None)
def test_labels_arrive_in_frames_that_fit(labels: list[str]) -> None:
    received: list[str] = []
    while len(received) < len(labels):
        payload = protocol.pack_labels(labels, len(received))
        assert len(payload) <= protocol.MAX_PAYLOAD_BYTES
        start, total, chunk = protocol.unpack_labels(payload)
        assert start == len(received) and total == len(labels) and chunk
        received += chunk
    assert received == [label.encode()[: protocol.MAX_STRING_BYTES].decode("utf-8", "replace") for label in labels]


def test_error_reply_names_status_and_request() -> None:
    error = protocol.unpack_error(protocol.pack_error(Status.INPUT_INCOMPLETE, MessageType.INVOKE))
    assert error.status == Status.INPUT_INCOMPLETE and error.request_type == MessageType.INVOKE
    assert "INVOKE" in error.problem and "INPUT_INCOMPLETE" in error.problem
    assert error.exit_code == 5


def test_input_chunks_fit_the_receive_buffer() -> None:
    for rx_buffer in (32, 64, 256, 4096):
        chunk = protocol.input_chunk_bytes(rx_buffer)
        wire = protocol.encode_frame(Frame(MessageType.INPUT, 1, struct.pack("<I", 0) + b"\xff" * chunk))
        assert len(wire) <= rx_buffer
    with pytest.raises(ProtocolError):
        protocol.input_chunk_bytes(12)


def test_header_is_rendered_from_the_python_definitions() -> None:
    header = protocol.render_c_header()
    assert header.startswith("// generated by tinyml")
    assert f"constexpr uint8_t kProtocolVersion = {protocol.PROTOCOL_VERSION};" in header
    for message in MessageType:
        assert f"= 0x{message.value:02X};" in header
    for status, text in protocol.STATUS_TEXT.items():
        assert f'case {status.value}: return "{text}";' in header
    assert protocol.dtype_constant("int8") == "kDtypeInt8"
    assert "constexpr uint8_t kDtypeInt8 = 9;" in header
    with pytest.raises(ValueError):
        protocol.dtype_constant("complex64")
