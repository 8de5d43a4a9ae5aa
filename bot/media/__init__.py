"""Media workers: processes that each receive, decode and find faces in a shard of the students.

The bot's parent process keeps the meeting (chat, roster, the session), the inference client and
storage; each worker holds its own VideoRoom subscriber connection to Janus and sends the parent
only face crops (a few KB) and typed events. See ``wire.py`` (messages), ``worker.py`` (the
worker process), ``pool.py`` (starting and restarting workers) and ``sharded.py`` (one meeting's
subscription spread over the workers). Workers never import TensorFlow.
"""

from bot.media.pool import MediaWorkers
from bot.settings import default_num_media_workers

__all__ = ["MediaWorkers", "default_num_media_workers"]
