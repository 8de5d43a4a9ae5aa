"""classpulse bot: the media process (meeting connectors, per-meeting session, web app, CLI).

Never imports TensorFlow or Keras: they crash beside aiortc/pylibsrtp.
"""
