import pytest

from protocol import headers
from protocol.errors import ProtocolError
from protocol.framing import (FIRST_BUFFER, SIZE_PREFIX, FrameBuffer, FrameTooLarge, InFlightRequests,
                              UnexpectedResponse, framed)
from protocol.messages import ApiKey



@pytest.mark.parametrize("step", [1, 3, 4096, 1 << 20])
def test_frames_of_every_size_come_out_whole_and_in_order(step):
    payloads = [b"", b"a", bytes(range(256)) * 63, b"b" * 16380, b"c" * 16381, bytes(3 * FIRST_BUFFER + 5), b"end"]
    frames = FrameBuffer()
    assert frames.receive_data(b"".join(framed(p) for p in payloads), step) == payloads
    assert not frames.frame_begun


def test_a_frame_begun_is_held_until_whole():
    frames = FrameBuffer()
    assert frames.receive_data(framed(b"whole")[:2], 10) == [] and frames.frame_begun
    assert frames.receive_data(framed(b"whole")[2:], 10) == [b"whole"] and not frames.frame_begun


def test_a_large_frame_is_received_in_place_into_a_buffer_that_grows_with_what_arrives():
    frames = FrameBuffer()
    size = 100 * FIRST_BUFFER
    frames.receive_data(SIZE_PREFIX.pack(size) + b"x" * 100, 4096)
    assert frames.large_frame_size == size
    room = frames.get_buffer()
    # What the read-ahead held of it is in its buffer, which is no bigger than the first buffer.
    assert len(room) == FIRST_BUFFER - 100
    room[:len(room)] = bytes(len(room))
    del room
    frames.buffer_updated(FIRST_BUFFER - 100)
    assert len(frames.get_buffer()) == FIRST_BUFFER  # doubled once full, not sized to the claim


def test_a_large_frame_gets_its_buffer_only_when_asked_for_room():
    frames = FrameBuffer()
    frames.receive_data(SIZE_PREFIX.pack(50_000), 4096)
    assert frames.large_frame_size == 50_000 and frames._large is None
    assert len(frames.get_buffer()) == 50_000


@pytest.mark.parametrize("size", [-1, -(2**31), 1001, 20_000])
def test_negative_or_oversized_frames_are_refused(size):
    frames = FrameBuffer(max_frame_bytes=1000)
    with pytest.raises(FrameTooLarge) as refused:
        frames.receive_data(SIZE_PREFIX.pack(size), 4096)
    assert isinstance(refused.value, ProtocolError)
    assert ("negative" if size < 0 else "over the limit of 1000 bytes") in str(refused.value)


def api_versions_response(correlation_id: int) -> bytes:
    return (headers.encode_response_header(ApiKey.API_VERSIONS, 3, correlation_id)
            + b"\x00\x00" + b"\x01" + b"\x00\x00\x00\x00" + b"\x00")


def test_requests_get_increasing_correlation_ids_and_their_responses_decoded():
    in_flight = InFlightRequests("client")
    first, data = in_flight.request(ApiKey.API_VERSIONS, 3, {"client_software_name": "t", "client_software_version": "1"})
    second, _ = in_flight.request(ApiKey.API_VERSIONS, 3, {"client_software_name": "t", "client_software_version": "1"})
    assert (first, second) == (1, 2) and len(in_flight) == 2
    request_header, _ = headers.decode_request(data[SIZE_PREFIX.size:])
    assert (request_header.correlation_id, request_header.client_id) == (1, "client")
    header, body = in_flight.response(api_versions_response(1))
    assert header.correlation_id == 1 and body.error_code == 0 and len(in_flight) == 1


def test_a_response_out_of_order_or_unasked_for_is_rejected():
    in_flight = InFlightRequests("client", first_correlation_id=7)
    with pytest.raises(UnexpectedResponse):
        in_flight.response(api_versions_response(7))
    in_flight.request(ApiKey.API_VERSIONS, 3, {"client_software_name": "t", "client_software_version": "1"})
    with pytest.raises(UnexpectedResponse, match="correlation id 8 .* has 7"):
        in_flight.response(api_versions_response(8))


def test_a_produce_with_acks_zero_awaits_no_response():
    in_flight = InFlightRequests("client")
    in_flight.request(ApiKey.PRODUCE, 9, {"transactional_id": None, "acks": 0, "timeout_ms": 1, "topic_data": []})
    in_flight.request(ApiKey.METADATA, 12, {"topics": None}, correlation_id=40)
    assert len(in_flight) == 1
