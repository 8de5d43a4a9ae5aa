"""classpulse bot: meeting connectors, the per-meeting session, alerts, web app and CLI.

The media process lives here: nothing in bot/ may import TensorFlow (it segfaults beside
aiortc's pylibsrtp); the model runs in the engine's inference process.
"""
