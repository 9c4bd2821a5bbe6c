"""``python3 -m svga.lab ...``: the same as ``svga lab ...`` (see svga/lab/cli.py)."""

from svga.lab.cli import main

raise SystemExit(main())
