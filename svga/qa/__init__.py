"""QA layer: check screenshots, as openQA and pytest snapshot plugins do.

A library beside the tools (``svga compare``, ``svga needle``) and the pytest plugin; it
works on RGB images (numpy ``(h, w, 3)`` uint8) and knows nothing of devices, except
:mod:`svga.qa.golden`, which names goldens by the kind of device a screenshot came from.

- :mod:`svga.qa.errors`: :class:`~svga.qa.errors.BadInput`, the one error for bad files.
- :mod:`svga.qa.images`: reading PNGs (with one-line errors), writing them.
- :mod:`svga.qa.pixels`: pixel-for-pixel comparison (tolerance, excludes, a mask).
- :mod:`svga.qa.needle`: openQA needles (JSON beside a PNG): reading as os-autoinst reads
  them, writing them.
- :mod:`svga.qa.openqa`: os-autoinst's matcher (tinycv's metric and margin search) in numpy.
- :mod:`svga.qa.diffimage`: the pictures a person looks at (diff overlay, needle outlines).
- :mod:`svga.qa.report`: one HTML page of failures (expected, actual, diff side by side).
- :mod:`svga.qa.golden`: golden images kept per device kind (the pytest fixture's logic).
- :mod:`svga.qa.pytest_plugin`: the ``svga_golden`` fixture and its options.

docs/openqa.md holds the facts about os-autoinst this package relies on.
"""
