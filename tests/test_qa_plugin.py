"""The pytest plugin (entry point pytest11, svga.qa.pytest_plugin) run inside pytester: a
passing golden, a failing one with its message and HTML report, the update flag, the ini
option; then the report opened in a real headless browser (Debian's chromium), which must
load every image."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest_plugins = ("pytester",)

CHROMIUM = "/usr/bin/chromium"

TESTS = """
import numpy as np
from svga.device import open_device

def draw(colour):
    dev = open_device("model")
    dev.set_mode(64, 48)
    dev.fill(0x102030, 0, 0, 64, 48)
    dev.fill(colour, 8, 4, 10, 6)
    return dev

def test_screen(svga_golden):
    with draw(COLOUR) as dev:
        svga_golden.check(dev, "screen")

def test_array(svga_golden):
    img = np.zeros((20, 30, 3), np.uint8)
    img[2:5, 3:9] = ARRAY_VALUE
    svga_golden.check(img, "plain/array", kind="image")
"""


def write_tests(pytester: pytest.Pytester, colour: int, value: int, ini: str = "") -> None:
    pytester.makepyfile(test_golden=TESTS.replace("COLOUR", hex(colour)).replace("ARRAY_VALUE", str(value)))
    if ini:
        pytester.makeini(ini)


def test_update_then_pass_then_fail_with_report(pytester: pytest.Pytester):
    write_tests(pytester, 0xFF0000, 200)
    first = pytester.runpytest()
    first.assert_outcomes(failed=2)
    first.stdout.fnmatch_lines(["*no golden image*run pytest --svga-update-goldens*"])

    pytester.runpytest("--svga-update-goldens").assert_outcomes(passed=2)
    golden = pytester.path / "tests" / "goldens" / "model" / "screen.png"
    png = np.asarray(Image.open(golden).convert("RGB"))
    # The oracle: the picture drawn, written with numpy here.
    want = np.zeros((48, 64, 3), np.uint8)
    want[:] = (0x10, 0x20, 0x30)
    want[4:10, 8:18] = (255, 0, 0)
    assert np.array_equal(png, want)
    assert (pytester.path / "tests" / "goldens" / "image" / "plain" / "array.png").exists()

    pytester.runpytest().assert_outcomes(passed=2)

    write_tests(pytester, 0x00FF00, 201)  # 60 pixels of the screen change, 18 of the array
    report = pytester.path / "out" / "report.html"
    res = pytester.runpytest("--svga-report", str(report))
    res.assert_outcomes(failed=2)
    res.stdout.fnmatch_lines(
        [
            "*golden 'screen' on model: 60 pixels differ*within 10x6 at 8,4; diff image *",
            "*golden 'plain/array' on image: 18 pixels differ*within 6x3 at 3,2*",
            "svga: golden report (2 failures): *report.html",
        ]
    )
    text = res.stdout.str()
    diff = Path(re.search(r"on model: .*diff image (\S+),", text).group(1))
    pic = np.asarray(Image.open(diff).convert("RGB"))
    assert (pic == (255, 0, 255)).all(axis=2).sum() >= 60  # the 60 pixels, plus the outline
    page = report.read_text()
    assert page.count("<img ") == 6 and page.count("<section>") == 2
    for src in re.findall(r"<img src='([^']+)'", page):
        assert (report.parent / src).stat().st_size > 0
    # The goldens were not touched by a failing run.
    assert np.array_equal(np.asarray(Image.open(golden).convert("RGB")), want)

    pytester.runpytest("--svga-update-goldens").assert_outcomes(passed=2)
    pytester.runpytest().assert_outcomes(passed=2)


def test_ini_option_chooses_the_folder(pytester: pytest.Pytester):
    write_tests(pytester, 0xFF0000, 1, ini="[pytest]\nsvga_goldens = golden-images\n")
    pytester.runpytest("--svga-update-goldens").assert_outcomes(passed=2)
    assert (pytester.path / "golden-images" / "model" / "screen.png").exists()
    assert not (pytester.path / "tests" / "goldens").exists()


def test_tolerance_and_size_change(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_t="""
import numpy as np
def test_t(svga_golden):
    img = np.full((10, 10, 3), VALUE, np.uint8)
    svga_golden.check(img[:SIZE], "t", tolerance=2)
""".replace("VALUE", "100").replace("SIZE", "10")
    )
    pytester.runpytest("--svga-update-goldens").assert_outcomes(passed=1)
    pytester.makepyfile(test_t=pytester.path.joinpath("test_t.py").read_text().replace("100", "102"))
    pytester.runpytest().assert_outcomes(passed=1)  # within the tolerance
    pytester.makepyfile(test_t=pytester.path.joinpath("test_t.py").read_text().replace("img[:10]", "img[:5]"))
    res = pytester.runpytest()
    res.assert_outcomes(failed=1)
    res.stdout.fnmatch_lines(["*golden 't' on image is 10x10, the screenshot 10x5*"])


def chromium_image_check(page: Path, tmp_path: Path) -> dict:
    """Open the page in headless chromium; a script appended to a copy of the page writes, into
    the DOM, how many <img> elements there are and how many loaded (naturalWidth > 0)."""
    assert Path(CHROMIUM).exists(), "install Debian's chromium"
    probe = page.with_name("probe.html")
    probe.write_text(
        page.read_text().replace(
            "</body>",
            """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const r = {count: imgs.length, loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
             widths: imgs.map(i => i.naturalWidth)};
  document.body.setAttribute('data-probe', JSON.stringify(r));
});
</script></body>""",
        )
    )
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--allow-file-access-from-files",
        "--virtual-time-budget=5000",
        "--dump-dom",
        probe.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = re.search(r"data-probe=\"([^\"]+)\"", proc.stdout)
    assert m, proc.stdout[-2000:]
    return json.loads(m.group(1).replace("&quot;", '"'))


def test_report_images_load_in_a_browser(tmp_path):
    from svga.qa.golden import GoldenStore
    from svga.qa.report import Failure, write_report

    store = GoldenStore(tmp_path / "goldens", tmp_path / "out", update=True)
    a = np.zeros((30, 40, 3), np.uint8)
    store.check(a, "one")
    store.update = False
    b = a.copy()
    b[5:8, 5:9] = 255
    res = store.check(b, "one")
    assert res.status == "differ" and "12 pixels differ" in res.message
    page = write_report(
        tmp_path / "report" / "index.html",
        [Failure("test_x", "image/one", res.message, res.golden, res.actual, res.diff)],
    )
    shutil.rmtree(tmp_path / "out")  # the report keeps its own copies
    probe = chromium_image_check(page, tmp_path)
    assert probe["count"] == 3 and probe["loaded"] == 3, probe
    assert probe["widths"] == [40, 40, 40]

    # And a broken link would be seen: the check is not blind.
    (page.parent / "index_files" / "000-diff.png").write_bytes(b"not a png")
    probe = chromium_image_check(page, tmp_path)
    assert probe["loaded"] == 2, probe
