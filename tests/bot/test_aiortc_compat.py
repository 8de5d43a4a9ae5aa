"""The bot declines abs-send-time, so aiortc runs no receive-side bandwidth estimator for it, and
its subscriber sockets get receive buffers that outlast a busy event loop."""

from __future__ import annotations

import asyncio
import socket

import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from av import VideoFrame

from bot.meetings.aiortc_compat import (
    ABS_SEND_TIME,
    decline_abs_send_time,
    enlarge_receive_buffers,
)

OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 1 IN IP4 127.0.0.2",
        "s=VideoRoom 1234",
        "t=0 0",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "a=mid:0",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid",
        f"a=extmap:3 {ABS_SEND_TIME}",
        f"a=extmap:4/sendonly {ABS_SEND_TIME}",
        "a=extmap:12 urn:3gpp:video-orientation",
        "a=rtpmap:96 VP8/90000",
        "",
    ]
)


def test_only_the_abs_send_time_lines_go() -> None:
    declined = decline_abs_send_time(OFFER)
    assert ABS_SEND_TIME not in declined
    assert declined.split("\r\n") == [
        line for line in OFFER.split("\r\n") if ABS_SEND_TIME not in line
    ]
    assert decline_abs_send_time(OFFER.replace("\r\n", "\n")) == declined.replace("\r\n", "\n")
    assert decline_abs_send_time(declined) == declined


class _Still(VideoStreamTrack):
    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="bgr24")
        frame.pts, frame.time_base = pts, time_base
        return frame


def test_an_aiortc_answer_to_the_declined_offer_does_not_accept_the_extension() -> None:
    async def answers() -> tuple[str, str]:
        sender = RTCPeerConnection()
        sender.addTrack(_Still())
        await sender.setLocalDescription(await sender.createOffer())
        offer = sender.localDescription.sdp
        texts = []
        for sdp in (offer, decline_abs_send_time(offer)):
            receiver = RTCPeerConnection()
            await receiver.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await receiver.setLocalDescription(await receiver.createAnswer())
            texts.append(receiver.localDescription.sdp)
            await receiver.close()
        await sender.close()
        return texts[0], texts[1]

    plain, declined = asyncio.run(answers())
    assert ABS_SEND_TIME in plain  # aiortc accepts it when offered: the munging is what declines it
    assert ABS_SEND_TIME not in declined
    assert "urn:ietf:params:rtp-hdrext:sdes:mid" in declined


def test_the_subscriber_sockets_get_bigger_receive_buffers() -> None:
    async def sizes() -> tuple[list[int], list[int], list[int]]:
        sender = RTCPeerConnection()
        sender.addTrack(_Still())
        await sender.setLocalDescription(await sender.createOffer())
        receiver = RTCPeerConnection()
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        before = enlarge_receive_buffers(receiver, size=1)  # reads: none is below 1 byte
        granted = enlarge_receive_buffers(receiver, size=1 << 20)
        again = enlarge_receive_buffers(receiver, size=1 << 20)
        await receiver.close()
        await sender.close()
        return before, granted, again

    before, granted, again = asyncio.run(sizes())
    default = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    kernel_default = default.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    default.close()
    assert before  # one size per ICE socket
    # The kernel grants up to twice net.core.rmem_max: more than aioice's own and the default.
    assert len(granted) == len(before)
    assert all(new > max(old, kernel_default) for new, old in zip(granted, before, strict=True))
    assert again == granted  # asking twice changes nothing
