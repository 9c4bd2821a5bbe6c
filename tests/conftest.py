"""Test-suite policy shared by every test file.

- Tests marked ``needs_uinput`` need a writable /dev/uinput. This host kind has none, so
  they are deselected here (not skipped) and run inside a lab guest instead
  (tests/test_vmmouse_lab.py runs them there and checks they passed).
- In CI (``CI`` set), a skipped test is a failure: nothing may pass CI by not running.
- Where the machine has a C compiler, ``SVGA_NATIVE=require`` is set for the whole run (unless
  the environment already sets ``SVGA_NATIVE``), so the suite runs and measures the compiled
  cores (svga/native.py, docs/native.md 'Environment') and a core that fails to build is an
  error, not a quiet fall-back to the Python code. The tests that compare a core with its
  Python code take the core away themselves (tests/test_model_fastpath.py).
"""

from __future__ import annotations

import os

import pytest

from svga import native

if native.compiler() is not None:
    os.environ.setdefault("SVGA_NATIVE", "require")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.access("/dev/uinput", os.W_OK):
        return
    dropped = [i for i in items if i.get_closest_marker("needs_uinput")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if not i.get_closest_marker("needs_uinput")]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which counts as a failure: {reason}"
