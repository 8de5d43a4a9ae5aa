"""The built-in class room: the default meeting for trying classpulse and for small classes.

A room page (``/rooms/NAME``, plain HTML/JS in ``static/``) where people pick a name, turn on the
camera, see each other and chat; signalling over a WebSocket of our own; media through aiortc on
the server. The teacher is whoever opens the teacher link (``/rooms/NAME#teacher=TOKEN``, the
token made per room by ``RoomRegistry.create``); the bot joins in-process through
``BuiltinRoomConnector``, and its alerts are whispers that only the teacher's page receives.

How far it scales (the decision): every browser sends its camera to the server once; the server
decodes it once and relays it, scaled to 320×180 at 10 fps, into at most ``max_tiles_per_student``
(4) tiles on each student's page and ``max_tiles_per_teacher`` (8) on the teacher's. Each tile is
one VP8 encode on the server, so the cost grows with cameras + tiles (linear in the class size)
instead of cameras². Measured with ``benchmarks/room_cpu.py`` (2-core VM, students in another
process, the bot sampling every camera at 5 fps), server CPU in % of one core:

    students (tiles each)    2 (1)    4 (3)    8 (4)
    with tiles               13 %     36 %     69 %
    without tiles              -      11 %     22 %   → ~2.8 % per camera + 1.5–2 % per tile

So a 2-core machine carries about 8 cameras with every tile at full rate; ``max_participants``
(30) bounds a room, cameras off cost only chat. Lower the tile caps for more cameras; larger
classes belong on Janus (``janus+ws://``), which forwards video without re-encoding.
"""

from __future__ import annotations

from bot.room.connector import BuiltinRoomConnector, builtin_connector_factory
from bot.room.room import Room, RoomRegistry
from bot.room.settings import RoomSettings
from bot.room.web import ROOM_REGISTRY, setup_room

__all__ = [
    "ROOM_REGISTRY",
    "BuiltinRoomConnector",
    "Room",
    "RoomRegistry",
    "RoomSettings",
    "builtin_connector_factory",
    "setup_room",
]
