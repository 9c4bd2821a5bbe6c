"""QA layer: the error for input ``svga compare`` and ``svga needle`` cannot use.

Its message is one line naming the file and the problem; the tools print it after
``svga: error:`` and exit 2 (what the QA tools' callers expect: 0 match, 1 no match,
2 bad input; see svga/tools/compare.py).
"""

from svga.errors import SVGAError


class BadInput(SVGAError):
    """A missing, unreadable, truncated or inconsistent input file or option."""
