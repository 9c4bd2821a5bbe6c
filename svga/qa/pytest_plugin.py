"""QA layer: the pytest plugin installed with the package (entry point ``pytest11``).

    def test_demo_screen(svga_golden):
        with open_device("model") as dev:
            draw_demo(dev, 800, 600)
            svga_golden.check(dev, "demo-800x600")

- fixture ``svga_golden``: ``.check(image_or_device, name, tolerance=0, max_diff_pixels=0,
  kind=None)`` compares with ``GOLDENS/KIND/NAME.png`` (:mod:`svga.qa.golden`) and fails the
  test with the count of differing pixels, their bounding box and the diff image's path;
- ``--svga-update-goldens``: write or refresh the goldens instead of failing;
- ``--svga-report FILE.html``: one page with expected, actual and diff for every failure
  (:mod:`svga.qa.report`);
- ini option ``svga_goldens``: the goldens' folder, relative to the ini file's folder
  (default ``tests/goldens``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from svga.qa.golden import GoldenResult, GoldenStore
from svga.qa.report import Failure, write_report

FAILURES = pytest.StashKey[list]()
REPORT = pytest.StashKey[Path]()
DEFAULT_GOLDENS = "tests/goldens"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("svga", "svga golden images")
    group.addoption("--svga-update-goldens", action="store_true", default=False,
                    help="write missing goldens and replace differing ones instead of failing")
    group.addoption("--svga-report", metavar="FILE.html", default=None,
                    help="write an HTML page with expected, actual and diff of every failed golden")
    parser.addini("svga_goldens", f"folder of golden images, relative to the ini file (default "
                  f"{DEFAULT_GOLDENS})", default=DEFAULT_GOLDENS)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[FAILURES] = []


def goldens_dir(config: pytest.Config) -> Path:
    base = config.inipath.parent if config.inipath else config.rootpath
    return base / str(config.getini("svga_goldens"))


class GoldenChecker:
    """What the ``svga_golden`` fixture gives a test."""

    def __init__(self, store: GoldenStore, test: str, failures: list) -> None:
        self.store = store
        self.test = test
        self.failures = failures
        self.results: list[GoldenResult] = []

    def check(self, image_or_device: object, name: str, *, tolerance: int = 0, max_diff_pixels: int = 0,
              kind: str | None = None) -> GoldenResult:
        res = self.store.check(image_or_device, name, kind=kind, tolerance=tolerance,
                               max_diff_pixels=max_diff_pixels)
        self.results.append(res)
        if res.failed:
            if res.actual is not None and res.golden.exists():
                self.failures.append(Failure(self.test, f"{res.kind}/{name}", res.message, res.golden,
                                             res.actual, res.diff or res.actual))
            pytest.fail(res.message, pytrace=False)
        return res


@pytest.fixture
def svga_golden(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> GoldenChecker:
    config = request.config
    out = tmp_path_factory.mktemp("svga-golden", numbered=True)
    store = GoldenStore(goldens_dir(config), out, update=config.getoption("--svga-update-goldens"))
    return GoldenChecker(store, request.node.nodeid, config.stash[FAILURES])


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    target = config.getoption("--svga-report")
    if target:
        page = write_report(Path(target), config.stash[FAILURES])
        config.stash[REPORT] = page



def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    page = config.stash.get(REPORT, None)
    if page is not None:
        n = len(config.stash[FAILURES])
        terminalreporter.write_line(f"svga: golden report ({n} failure{'s' if n != 1 else ''}): {page}")
