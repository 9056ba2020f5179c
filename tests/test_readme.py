"""The README and docs/ say what the code does: their command outputs are the commands' outputs.

A block written between ``<!-- output: adtiers ARGS -->`` and ``<!-- end -->`` (a Markdown table, or a
fenced code block) must be exactly what ``adtiers ARGS`` prints from this checkout: the README's first
results are ``adtiers report --markdown`` on the committed reference run, and the generated code in
docs/ is ``adtiers show``'s. Links between the files must resolve, each design note must open with
what it explains, and the README stays a guide: short, the two commands first, no run's timings in
its prose.
"""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
OUTPUT = re.compile(r"<!-- output: adtiers (?P<args>[^\n]*?) -->\n(?P<body>.*?)<!-- end -->", re.S)
FENCE = re.compile(r"\A```[a-z]*\n(?P<code>.*)```\n\Z", re.S)
LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def _blocks() -> list[tuple[str, str, str]]:
    found = []
    for path in [README, *DOCS]:
        for m in OUTPUT.finditer(path.read_text()):
            found.append((path.relative_to(ROOT).as_posix(), m["args"], m["body"]))
    return found


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_readme_has_its_table_of_the_reference_run():
    commands = [args for path, args, _ in _blocks() if path == "README.md"]
    assert any(a.startswith("report --markdown results/reference/") for a in commands)
    reference = shlex.split(next(a for a in commands if a.startswith("report --markdown")))[2]
    assert (ROOT / reference).is_file()  # a committed file, not a run of the reader's


@pytest.mark.parametrize(("where", "args", "body"), _blocks(), ids=lambda v: v if "\n" not in v else "")
def test_each_output_block_is_what_its_command_prints(where, args, body):
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", *shlex.split(args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 and args.startswith("show ") and "unavailable" in proc.stderr + proc.stdout:
        pytest.skip(f"{where}: adtiers {args}: the engine is not available here")
    assert proc.returncode == 0, proc.stderr
    fenced = FENCE.match(body)
    expected = fenced["code"] if fenced else body
    assert proc.stdout == expected, f"{where}: the block under `adtiers {args}` is not what it prints"


def test_the_readme_is_a_short_guide_with_the_two_commands_first():
    lines = README.read_text().splitlines()
    assert len(lines) <= 300
    first = "\n".join(lines[:40])
    assert "make bench" in first and "make test" in first


def test_the_readme_prose_holds_no_timings_of_a_run():
    """Figures of particular runs belong to results files: outside the generated blocks, no time."""
    prose = OUTPUT.sub("", README.read_text())
    assert not re.findall(r"\d\s?(?:µs|ms|min)\b|\d+ min \d+ s", prose)


def test_every_design_note_opens_with_what_it_explains():
    assert len(DOCS) >= 10
    for path in DOCS:
        title, blank, opening = path.read_text().splitlines()[:3]
        assert title.startswith("# ") and blank == "", path.name
        assert opening.startswith("This explains "), path.name


def test_links_between_the_readme_and_docs_resolve():
    readme_links = {m["target"] for m in LINK.finditer(README.read_text())}
    assert {f"docs/{p.name}" for p in DOCS} <= {t.split("#")[0] for t in readme_links}  # every note linked
    for path in [README, *DOCS]:
        for m in LINK.finditer(path.read_text()):
            target = m["target"]
            if target.startswith(("http://", "https://")):
                continue
            file, _, anchor = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            assert linked.exists(), f"{path.name}: {target}"
            if anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.*)$", linked.read_text(), re.M)
                assert anchor in {_slug(h) for h in headings}, f"{path.name}: {target}"
