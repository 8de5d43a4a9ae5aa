"""``python -m bot.cli``: the ``classpulse`` command."""

import sys

from bot.cli import main

sys.exit(main())
