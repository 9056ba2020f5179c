"""Where an engine's numbers come from: its libraries' versions and its package's commit.

The results file's ``engines`` section records, for every engine, ``versions`` (``Engine.versions``:
each library it runs on and the distribution that holds it) and ``commit``: the git commit of that
distribution where it has one, from pip's ``direct_url.json`` (an install from a VCS URL) or, for an
editable or local install, from the git checkout it points at. A rerun on other versions is then
visible in the file itself, not only in the machine's environment.
"""

from __future__ import annotations

import json
import subprocess
from importlib.metadata import distributions
from typing import Any
from urllib.parse import unquote, urlparse

from engines.core.contract import Engine


def package_commit(dist_name: str) -> str | None:
    """The git commit a distribution was installed from, or None where that is not known."""
    # Every copy of the metadata on the path, not only the first: a source checkout's own
    # ``*.egg-info`` comes first from its folder and has no ``direct_url.json``.
    texts = [d.read_text("direct_url.json") for d in distributions(name=dist_name)]
    text = next((t for t in texts if t), None)
    if not text:
        return None
    try:
        info = json.loads(text)
    except ValueError:
        return None
    if isinstance(info.get("vcs_info"), dict) and info["vcs_info"].get("commit_id"):
        return str(info["vcs_info"]["commit_id"])
    url = urlparse(str(info.get("url", "")))
    if url.scheme != "file":
        return None
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=unquote(url.path),
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def engine_provenance(engine: Engine) -> dict[str, Any]:
    """``{"versions": {...}, "package": name, "commit": sha or None, "language": ...}`` for the results file."""
    language = str(getattr(engine, "language", "Python") or "Python")
    try:
        versions = engine.versions()
    except Exception as err:  # noqa: BLE001 -- an engine's broken versions() costs its versions only
        return {
            "versions": {},
            "package": None,
            "commit": None,
            "versions_error": f"{type(err).__name__}: {err}",
            "language": language,
        }
    package = next(iter(versions), None)
    commit = package_commit(package) if package else None
    return {"versions": versions, "package": package, "commit": commit, "language": language}
