"""``python3 -m vmmouse``: the same as the ``vmmouse`` console script."""

from vmmouse.cli import main

raise SystemExit(main())
