"""What machine a run was on, and what code it ran: the provenance a results file carries.

The machine id is a short slug of the hardware class (CPU model, logical cores, memory, OS and
architecture), never the hostname: two identical cloud machines have different hostnames but
should compare as equals, and the report sets a run beside the reference run only when ids match.
Library versions are read from package metadata, so describing the machine imports no framework.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

LIBRARIES = ("numpy", "numba", "numba-cuda", "jax", "jaxlib", "torch", "autograd", "pytest-benchmark")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def memory_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def gpu_name() -> str | None:
    """The first NVIDIA GPU's name from ``nvidia-smi``, or None (no driver, no device)."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return names[0] if out.returncode == 0 and names else None


def _slug(text: str) -> str:
    noise = r"\(r\)|\(tm\)|\bcpu\b|\bprocessor\b|\bintel\b|\bamd\b|@.*$|\d+-core"
    text = re.sub(noise, " ", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "cpu"


def machine_id(cpu: str, cores: int, mem_gb: float | None, system: str, arch: str) -> str:
    """``xeon-2c-24g-linux-x86_64``: stable across machines of one class, readable in a file name."""
    mem = f"{round(mem_gb)}g" if mem_gb is not None else "mem"
    return "-".join([_slug(cpu)[:32].strip("-"), f"{cores}c", mem, system.lower(), arch.lower()])


def library_versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for lib in LIBRARIES:
        try:
            found[lib] = version(lib)
        except PackageNotFoundError:
            found[lib] = None
    return found


def describe(threads: dict[str, Any]) -> dict[str, Any]:
    """The ``machine`` section of a results file."""
    cpu, cores, mem = cpu_model(), os.cpu_count() or 1, memory_gb()
    system, arch = platform.system(), platform.machine()
    return {
        "id": machine_id(cpu, cores, mem, system, arch),
        "cpu": cpu,
        "cores": cores,
        "memory_gb": mem,
        "os": f"{system} {platform.release()} {arch}",
        "python": sys.version.split()[0],
        "versions": library_versions(),
        "threads": threads,
        "gpu": gpu_name(),
    }


def git_state(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The commit and whether tracked files differ from it (new results files do not count)."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], check=False, cwd=root, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}
