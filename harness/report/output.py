"""Where reports go: ``<out>/<run>/index.html``, and ``<out>/index.html`` pointing to the latest.

The run id comes from a results file, so it is reduced to a safe directory name (letters, digits,
dot, dash, underscore; no leading dot) before it touches the filesystem: a hostile id such as
``../../x`` cannot write outside ``<out>``. Files are written atomically.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from harness.report.html import esc


def run_dir_name(run_id: str) -> str:
    """``run_id`` as a single safe path component."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).lstrip(".")
    return name[:120] or "run"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def pointer_page(target: str, title: str) -> str:
    """A page that sends the reader to ``target`` (relative): a link and a meta refresh, no script."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0; url={esc(target)}">'
        f"<title>latest adtiers report</title></head><body>"
        f'<p>Latest report: <a href="{esc(target)}">{esc(title)}</a></p></body></html>\n'
    )


def write_report(out: str | Path, run_id: str, html: str) -> Path:
    """Write the report and point ``<out>/index.html`` at it; returns the report's path."""
    out = Path(out)
    name = run_dir_name(run_id)
    path = out / name / "index.html"
    _write(path, html)
    _write(out / "index.html", pointer_page(f"{name}/index.html", run_id))
    return path
