"""Where the C++ libraries come from, the flags each compiles with, and their versions.

Every library comes from a registry, never from a download of its own:

- Stan Math 4.9 (with Eigen, Boost and TBB headers, and ``lib/libtbb.so``): inside the PyPI wheel
  ``httpstan`` (``pip install -e '.[native]'``, part of ``make install``);
- CppAD: the PyPI package ``cmeel-cppad`` (headers and ``libcppad_lib`` under ``cmeel.prefix``);
- ADOL-C 2.7: the Debian package ``libadolc-dev`` (``make install`` runs ``apt-get install`` where it
  runs as root with apt).

``Toolchain`` holds one family's flags (the Stan engines share one), what makes it unavailable
(``reason``: the command that installs what is missing) and the versions that key the compile
cache and go into the results file. Discovery costs a few file look-ups and one ``g++ -dumpfullversion``.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

CPP_DIR = Path(__file__).parent / "cpp"
"""The preludes: ``adt.hpp`` (shared), ``stan.hpp``, ``tape.hpp`` with ``cppad.hpp`` and ``adolc.hpp``."""

COMMON_FLAGS = ("-O3", "-march=native", "-std=c++17", "-DNDEBUG", "-fPIC", "-shared", "-w")
"""-O3 -march=native as the libraries' own benchmarks build; ``-w``: the libraries' headers warn."""

PIP_INSTALL = "pip install -e '.[native]' -c constraints.txt (make install does it)"


@dataclass(frozen=True)
class Toolchain:
    """One C++ library as the engines compile against it."""

    family: str
    prelude: str
    flags: tuple[str, ...] = ()
    libs: tuple[str, ...] = ()
    reason: str | None = None
    versions: dict[str, str | None] = field(default_factory=dict)
    headers: tuple[str, ...] = ()
    """The preludes this family's source includes (``cpp/``), whose text keys its cache."""

    def key_text(self) -> str:
        """What the compile cache is keyed by besides the source: flags, libraries, versions, preludes."""
        preludes = "".join((CPP_DIR / name).read_text() for name in ("adt.hpp", *self.headers))
        return "\n".join([*self.flags, *self.libs, repr(sorted(self.versions.items())), preludes])


@functools.cache
def compiler() -> tuple[str | None, str | None]:
    """(path of g++, its version), or (None, None) where there is no g++."""
    path = shutil.which("g++")
    if path is None:
        return None, None
    try:
        found = subprocess.run([path, "-dumpfullversion"], capture_output=True, text=True, timeout=30)
        return path, found.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return path, None


def _dist_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _header_version(path: Path, pattern: str) -> str | None:
    try:
        found = re.findall(pattern, path.read_text())
    except OSError:
        return None
    return ".".join(found) if found else None


def _base() -> tuple[str | None, dict[str, str | None]]:
    """The compiler's part of every toolchain: why it is unavailable (no g++), and its version."""
    gxx, gxx_version = compiler()
    reason = None if gxx else "g++ is not installed (apt-get install g++)"
    return reason, {"g++": gxx_version}


@functools.cache
def stan() -> Toolchain:
    """Stan Math from the httpstan wheel; the flags of the issue's probe, plus mix (fvar<var>)."""
    reason, versions = _base()
    spec = importlib.util.find_spec("httpstan")
    root = Path(spec.origin).parent if spec and spec.origin else None
    if reason is None and (root is None or not (root / "include" / "stan" / "math.hpp").exists()):
        reason = f"httpstan (Stan Math headers) is not installed: {PIP_INSTALL}"
    include, lib = (root / "include", root / "lib") if root else (Path(), Path())
    versions |= {
        "httpstan": _dist_version("httpstan"),
        "stan-math": _header_version(
            include / "stan" / "math" / "version.hpp", r"#define STAN_MATH_(?:MAJOR|MINOR|PATCH) (\d+)"
        ),
    }
    flags = (*COMMON_FLAGS, "-DBOOST_DISABLE_ASSERTS", "-D_REENTRANT", f"-I{include}", f"-L{lib}")
    libs = (f"-Wl,-rpath,{lib}", "-ltbb")
    return Toolchain("stan", "stan.hpp", flags, libs, reason, versions, ("stan.hpp", "stan_lpdf.hpp"))


def _cmeel_prefix() -> Path | None:
    for entry in sys.path:
        prefix = Path(entry) / "cmeel.prefix"
        if (prefix / "include" / "cppad" / "cppad.hpp").exists():
            return prefix
    return None


@functools.cache
def cppad() -> Toolchain:
    """CppAD from the cmeel-cppad wheel."""
    reason, versions = _base()
    prefix = _cmeel_prefix()
    if reason is None and prefix is None:
        reason = f"cmeel-cppad (CppAD) is not installed: {PIP_INSTALL}"
    prefix = prefix or Path()
    versions |= {
        "cmeel-cppad": _dist_version("cmeel-cppad"),
        "cppad": _header_version(
            prefix / "include" / "cppad" / "configure.hpp", r'CPPAD_PACKAGE_STRING "cppad-([\d.]+)"'
        ),
    }
    flags = (*COMMON_FLAGS, f"-I{prefix / 'include'}", f"-L{prefix / 'lib'}")
    return Toolchain(
        "cppad", "cppad.hpp", flags, (f"-Wl,-rpath,{prefix / 'lib'}", "-lcppad_lib"), reason, versions
    )


ADOLC_HEADER = Path("/usr/include/adolc/adolc.h")
ADOLC_INSTALL = (
    "apt-get update && apt-get install -y libadolc-dev (make install does it where it runs as root)"
)


@functools.cache
def adolc() -> Toolchain:
    """ADOL-C from Debian's libadolc-dev (headers in /usr/include/adolc, libadolc.so)."""
    reason, versions = _base()
    if reason is None and not ADOLC_HEADER.exists():
        reason = f"ADOL-C is not installed: {ADOLC_INSTALL}"
    adolc_version = None
    if shutil.which("dpkg-query"):
        found = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", "libadolc-dev"], capture_output=True, text=True
        )
        adolc_version = found.stdout.strip() or None
    versions |= {"adolc": adolc_version}
    return Toolchain(
        "adolc", "adolc.hpp", COMMON_FLAGS, ("-ladolc",), reason, versions, ("tape.hpp", "adolc.hpp")
    )


TOOLCHAINS = {"stan": stan, "cppad": cppad, "adolc": adolc}
