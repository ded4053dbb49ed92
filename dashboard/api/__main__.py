"""``python -m dashboard.api [--host H] [--port P]``: the same as ``lookalike api``."""

import sys

from dashboard.api.cli import main

sys.exit(main())
