"""``python -m svga``: the same as the ``svga`` command."""

import sys

from svga.tools.cli import main

sys.exit(main())
