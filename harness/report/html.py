"""Small HTML builders. Every piece of text passes through ``esc``: a results file is data, and a
hostile one (an engine called ``<script>``) must come out as visible text, never as markup.

The page carries its style inline and no script at all, so it opens from ``file://`` with no network.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd


def esc(value: Any) -> str:
    """``value`` as text, HTML-escaped (quotes included, so it is safe in attributes too)."""
    return html.escape("" if value is None else str(value), quote=True)


@dataclass(frozen=True)
class Td:
    """A table cell: its text, a CSS class and a tooltip (all escaped when rendered)."""

    text: str
    cls: str = ""
    title: str = ""

    def render(self, tag: str = "td") -> str:
        cls = f' class="{esc(self.cls)}"' if self.cls else ""
        title = f' title="{esc(self.title)}"' if self.title else ""
        return f"<{tag}{cls}{title}>{esc(self.text)}</{tag}>"


def table(
    header: Sequence[str], rows: Iterable[Sequence[str | Td]], row_headers: int = 1, cls: str = ""
) -> str:
    """A table; the first ``row_headers`` cells of each row are row headings; ``cls`` its CSS class."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = [c if isinstance(c, Td) else Td(str(c)) for c in row]
        tds = [c.render("th" if i < row_headers else "td") for i, c in enumerate(cells)]
        body.append("<tr>" + "".join(tds) + "</tr>")
    attr = f' class="{esc(cls)}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def frame_table(frame: pd.DataFrame) -> str:
    """A plain pandas table, escaped by pandas itself."""
    return frame.to_html(index=False, escape=True, na_rep="–", border=0, classes="plain")


def cell_matrix(
    frame: pd.DataFrame,
    rows: Sequence[tuple[Any, ...]],
    row_keys: Sequence[str],
    column_key: str,
    columns: Sequence[Any],
    render: Callable[[pd.Series | None], Td],
    header: Sequence[str],
) -> str:
    """A matrix of cells: one row per tuple in ``rows`` (values of ``row_keys``), one column per value
    of ``column_key``; ``render`` turns the frame's row for that cell (or None) into a ``Td``."""
    index = {tuple(r[k] for k in [*row_keys, column_key]): r for _, r in frame.iterrows()}
    body = []
    for row in rows:
        body.append([*map(str, row), *(render(index.get((*row, c))) for c in columns)])
    return table(header, body, row_headers=len(row_keys))


def key_values(mapping: Any) -> str:
    """A two-column table of a mapping from a results file; nested values shown as JSON."""
    if not isinstance(mapping, dict) or not mapping:
        return "<p class=muted>not recorded</p>"
    rows = []
    for key, value in mapping.items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        rows.append([str(key), text])
    return table(["", ""], rows, cls="text")


def section(anchor: str, title: str, how_to_read: str, body: str) -> str:
    """A report section: heading, a one-paragraph guide to reading it, then its content."""
    return (
        f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>'
        f'<p class="how">{esc(how_to_read)}</p>{body}</section>'
    )


STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; margin: 0 auto;
       max-width: 1200px; padding: 1em 2em 4em; color: #1b1b1b; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; } h3 { margin-top: 1.4em; }
p.how { color: #444; font-style: italic; max-width: 60em; }
p.muted, .muted { color: #777; }
p.warning { background: #fff3cd; border: 1px solid #e0c060; padding: 0.5em 0.8em; }
nav ol { columns: 2; max-width: 40em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 12px; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; vertical-align: top; }
thead th { background: #f3f3f3; position: sticky; top: 0; }
tbody th { text-align: left; font-weight: normal; background: #fafafa; }
table.plain td, table.text td { text-align: left; }
td.r0 { background: #1a9850; color: #fff; } td.r1 { background: #91cf60; } td.r2 { background: #d9ef8b; }
td.r3 { background: #fee08b; } td.r4 { background: #fc8d59; } td.r5 { background: #d73027; color: #fff; }
td.speed { white-space: pre-line; text-align: left; min-width: 16em; }
td.na { background: #e6e6e6; color: #666; text-align: left; }
td.bad { background: #d73027; color: #fff; } td.warn { background: #fee08b; }
td.good { background: #e5f5e0; } td.slower { background: #fcbba1; } td.faster { background: #c7e9c0; }
.env { display: flex; flex-wrap: wrap; gap: 0 2em; }
ol.notes { font-size: 12px; color: #444; }
figure { margin: 0.5em 0 1.5em; } figure svg { max-width: 100%; height: auto; }
.legend span { display: inline-block; padding: 0 0.6em; margin-right: 0.3em; font-size: 12px; }
"""


def page(title: str, toc: Sequence[tuple[str, str]], body: str) -> str:
    """The whole document: inline style, a table of contents, the sections; no script."""
    items = "".join(f'<li><a href="#{esc(a)}">{esc(t)}</a></li>' for a, t in toc)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{esc(title)}</h1><nav><strong>Contents</strong><ol>{items}</ol></nav>{body}</body></html>\n"
    )
