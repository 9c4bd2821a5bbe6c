"""Protocol layer (a helper of every layer): the project's small compiled cores, built with the
machine's C compiler on first use and loaded with :mod:`ctypes`.

Some hot loops (the model's fast path for small 2D commands, :mod:`svga.model.fastpath`) have a
C twin next to their Python code, ``<module>.c`` in the same package. This module compiles such
a file once (``cc -O2 -shared -fPIC``) into a cache folder and loads it; the file name carries a
hash of the source, the flags and the machine, so an edited source or another machine builds
anew and a stale library is never loaded. Nothing is needed beyond a C compiler and the C
library's headers (Debian: ``gcc``), which ``make`` installs for the tests; without them every
caller runs its pure-Python code, which gives the same results (docs/native.md).

The environment decides:

- ``SVGA_NATIVE=0`` never builds or loads a compiled core (the Python code runs);
- ``SVGA_NATIVE=require`` makes a failed build an error instead of a quiet fall-back (the test
  suite and the benchmarks set it, so that they measure what they say);
- ``SVGA_NATIVE_DIR`` is the cache folder (default ``$XDG_CACHE_HOME/svga/native``, else
  ``~/.cache/svga/native``; a per-user temporary folder when that cannot be written);
- ``CC`` is the compiler (default ``cc``).

``python3 -m svga.native`` builds every core of the package and says where each went (``make``
runs it after installing).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from pathlib import Path

# The C module behind hashlib's SHA-256, without importing hashlib and OpenSSL (3 ms of every
# command's start-up; docs/native.md 'Building'): _sha256 up to Python 3.11, _sha2 from 3.12.
try:
    from _sha256 import sha256  # type: ignore[import-not-found]
except ImportError:
    try:
        from _sha2 import sha256  # type: ignore[import-not-found,no-redef]
    except ImportError:
        from hashlib import sha256  # type: ignore[no-redef]

log = logging.getLogger(__name__)

FLAGS = ("-O2", "-shared", "-fPIC", "-std=c99", "-Wall", "-Werror")
"""The compiler flags of every core (part of the cached file's name)."""
PACKAGE = Path(__file__).resolve().parent

_loaded: dict[Path, ctypes.CDLL | None] = {}


class NativeError(RuntimeError):
    """A compiled core could not be built or loaded while ``SVGA_NATIVE=require``."""


def mode() -> str:
    """``off``, ``require`` or ``auto`` (the default), from ``SVGA_NATIVE``."""
    value = os.environ.get("SVGA_NATIVE", "").strip().lower()
    if value in ("0", "off", "no", "false"):
        return "off"
    if value == "require":
        return "require"
    return "auto"


def cache_dir() -> Path:
    """Where compiled cores are kept (created when first written)."""
    if os.environ.get("SVGA_NATIVE_DIR"):
        return Path(os.environ["SVGA_NATIVE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "svga" / "native"


def compiler() -> str | None:
    """The C compiler to use, or None when the machine has none."""
    import shutil  # here: only a build needs it (start-up, see the module's imports)

    cc = os.environ.get("CC", "cc")
    return shutil.which(cc) or (shutil.which("gcc") if "CC" not in os.environ else None)


def library_path(source: Path) -> Path:
    """The cached library's path for ``source`` (whether built yet or not)."""
    digest = sha256()
    digest.update(source.read_bytes())
    digest.update(" ".join(FLAGS).encode())
    digest.update(f"{os.uname().machine} {sys.platform}".encode())
    return cache_dir() / f"{source.stem}-{digest.hexdigest()[:16]}.so"


def _writable(folder: Path) -> Path:
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        if os.access(folder, os.W_OK):
            return folder
    except OSError:
        pass
    fallback = Path(tempfile.gettempdir()) / f"svga-native-{os.getuid()}"
    fallback.mkdir(mode=0o700, exist_ok=True)
    return fallback


def build(source: Path) -> Path:
    """Compile ``source`` into the cache unless it is there already; the library's path.
    Raises NativeError (one line) when there is no compiler or the build fails."""
    target = library_path(source)
    if target.exists():
        return target
    cc = compiler()
    if cc is None:
        raise NativeError(f"no C compiler to build {source.name} (install gcc, or set CC)")
    import subprocess
    import tempfile

    folder = _writable(target.parent)
    target = folder / target.name
    if target.exists():
        return target
    fd, tmp = tempfile.mkstemp(prefix=f".{source.stem}-", suffix=".so", dir=folder)
    os.close(fd)
    try:
        done = subprocess.run([cc, *FLAGS, "-o", tmp, str(source)], capture_output=True, text=True)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or ["(no message)"]
            # The first line naming an error (gcc starts with "In function ..." context lines).
            first = next((line for line in lines if "error" in line.lower()), lines[0]).strip()
            raise NativeError(f"building {source.name} with {cc} failed: {first}")
        os.replace(tmp, target)  # atomic: a concurrent build of the same source is harmless
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def load(source: Path) -> ctypes.CDLL | None:
    """The compiled core of ``source`` (built on first use), or None when ``SVGA_NATIVE=0`` or
    it cannot be built (then the caller's Python code runs). With ``SVGA_NATIVE=require`` a
    failure raises NativeError instead."""
    how = mode()
    if how == "off":
        return None
    source = Path(source).resolve()
    if source in _loaded:
        return _loaded[source]
    try:
        lib: ctypes.CDLL | None = ctypes.CDLL(str(build(source)))
    except (NativeError, OSError) as e:
        if how == "require":
            raise NativeError(str(e)) from None
        log.info("compiled core %s not used: %s", source.name, e)
        lib = None
    _loaded[source] = lib
    return lib


def sources() -> list[Path]:
    """Every compiled core's source in the package."""
    return sorted(PACKAGE.rglob("*.c"))


def main(argv: list[str] | None = None) -> int:
    """Build every core now; one line each; exit 1 if any failed."""
    failed = 0
    for src in sources():
        try:
            print(f"{src.relative_to(PACKAGE.parent)}: {build(src)}")
        except NativeError as e:
            failed += 1
            print(f"{src.relative_to(PACKAGE.parent)}: not built: {e}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
