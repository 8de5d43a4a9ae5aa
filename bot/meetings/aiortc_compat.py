"""Two adjustments for aiortc 1.x behind Janus's multistream subscriptions.

**Recycled m-lines.**
Janus recycles an inactive m-line (a publisher who left) for the next subscription, under the
same ``mid`` but with a NEW SSRC. aiortc registers a receiver's SSRCs with the transport's RTP
router only once, when the receiver starts, and routes packets by SSRC (or by payload type when
that is unambiguous — never with several VP8 streams): the new stream's packets would all be
dropped and the late joiner would stay black. After each offer we register the SSRC that the
offer now announces for every already-started receiver.

RTX packets of the recycled stream stay unknown to the receiver and are dropped by aiortc
(harmless: retransmissions only matter on lossy links, and a PLI recovers).

**No receive-side bandwidth estimation.** When abs-send-time is negotiated, aiortc feeds every
received video packet to its remote bitrate estimator (pure Python) and sends REMB reports. The
bot needs neither: it only receives, and Janus caps publishers with the room's bitrate, not with a
subscriber's REMB. ``decline_abs_send_time`` removes the extension from Janus's offer before aiortc
reads it, so the answer does not accept it and Janus sends the bot packets without it.

**Receive buffers that survive a busy loop.** One subscriber connection carries a whole shard of
the class: 24 students at 15 fps are ~1,100 packets a second on one UDP socket. The kernel's
default receive buffer (212,992 bytes, ~90 packets of true size) fills in under 0.1 s whenever
the worker's event loop is busy with a face; every packet dropped there corrupts a frame and the
ones after it until the next keyframe. Measured at 48 students (two workers): 132 packets a
second dropped (``RcvbufErrors``), analysis down to 2.8 frames a second per student.
``enlarge_receive_buffers`` asks for ``RECEIVE_BUFFER_BYTES`` on each of the connection's ICE
sockets; the kernel caps it at twice ``net.core.rmem_max`` (raise that for big classes).
"""

from __future__ import annotations

import logging
import socket

from aiortc import RTCPeerConnection
from aiortc.sdp import SessionDescription

logger = logging.getLogger(__name__)

ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
#: Asked for each ICE socket: ~1.5 s of a 24-student shard (the kernel doubles it for bookkeeping).
RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024


def decline_abs_send_time(offer_sdp: str) -> str:
    """``offer_sdp`` without its abs-send-time ``a=extmap`` lines (everything else untouched)."""
    lines = offer_sdp.split("\r\n") if "\r\n" in offer_sdp else offer_sdp.split("\n")
    newline = "\r\n" if "\r\n" in offer_sdp else "\n"
    kept = [
        line
        for line in lines
        if not (line.startswith("a=extmap:") and line.split()[1:2] == [ABS_SEND_TIME])
    ]
    return newline.join(kept)


def rebind_recycled_receivers(pc: RTCPeerConnection, offer_sdp: str) -> list[str]:
    """Register each started video receiver for the SSRC ``offer_sdp`` gives its mid; returns the
    mids that needed it."""
    receivers = {t.mid: t.receiver for t in pc.getTransceivers() if t.mid is not None}
    rebound = []
    for media in SessionDescription.parse(offer_sdp).media:
        receiver = receivers.get(media.rtp.muxId)
        if media.kind != "video" or receiver is None or not media.ssrc:
            continue
        router = getattr(receiver.transport, "_rtp_router", None)
        if router is None or not hasattr(router, "ssrc_table"):
            logger.error("aiortc internals changed: cannot rebind recycled mid %s", media.rtp.muxId)
            continue
        if receiver not in router.receivers:
            continue  # not started yet: aiortc registers it with the right SSRC itself
        fid = [group for group in media.ssrc_group if group.semantic == "FID"]
        main_ssrc = int(fid[0].items[0]) if fid else media.ssrc[0].ssrc
        if router.ssrc_table.get(main_ssrc) is not receiver:
            router.register_receiver(receiver, ssrcs=[main_ssrc], payload_types=[])
            rebound.append(media.rtp.muxId)
    if rebound:
        logger.info("recycled m-lines %s bound to their new SSRCs", rebound)
    return rebound


def enlarge_receive_buffers(pc: RTCPeerConnection, size: int = RECEIVE_BUFFER_BYTES) -> list[int]:
    """Ask for ``size`` bytes of receive buffer on every UDP socket of ``pc``'s ICE connections
    (call after ``setLocalDescription``, once candidates are gathered); returns the sizes the
    kernel granted, one per socket."""
    granted: list[int] = []
    seen: set[int] = set()
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        connection = getattr(getattr(dtls, "transport", None), "_connection", None)
        protocols = getattr(connection, "_protocols", None)
        if connection is None or protocols is None:
            logger.error("aiortc internals changed: cannot size the receive buffers")
            return granted
        for protocol in protocols:
            transport = getattr(protocol, "transport", None)
            sock = transport.get_extra_info("socket") if transport is not None else None
            if sock is None or sock.fileno() in seen:
                continue
            seen.add(sock.fileno())
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < size:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
            granted.append(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
    if granted and min(granted) < size:
        logger.warning(
            "UDP receive buffers are %d bytes, %d asked: raise net.core.rmem_max for big classes",
            min(granted),
            size,
        )
    return granted
