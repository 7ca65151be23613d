"""The HTML building blocks of the report: stylesheet, escaping, tables, figures, sections."""

from __future__ import annotations

import base64
import html
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from sim.format.scenario import Effects
from sim.outputs.report_text import written, written_signed

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

CSS = """
:root { --ink: #1d1f23; --muted: #5c6370; --rule: #d8dbe0; --soft: #f4f5f7; --accent: #9c2f1a; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
main { max-width: 62rem; margin: 0 auto; padding: 2rem 1.25rem 4rem; }
h1 { font-size: 1.9rem; line-height: 1.2; margin: 0 0 .4rem; }
h2 { font-size: 1.35rem; margin: 2.6rem 0 .8rem; padding-bottom: .25rem;
  border-bottom: 2px solid var(--rule); }
h3 { font-size: 1.1rem; margin: 1.8rem 0 .5rem; }
p, ul, ol { margin: .5rem 0 .9rem; }
a { color: var(--accent); }
.summary { font-size: 1.08rem; }
.meta, .muted, figcaption { color: var(--muted); font-size: .9rem; }
nav.toc { background: var(--soft); border-radius: 6px; padding: .6rem 1rem; margin: 1.4rem 0; }
nav.toc ol { margin: .2rem 0; padding-left: 1.4rem; columns: 2; }
div.table { overflow-x: auto; margin: .6rem 0 1.2rem; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; }
th, td { text-align: left; vertical-align: top; padding: .35rem .55rem;
  border-bottom: 1px solid var(--rule); }
thead th { background: var(--soft); border-bottom: 2px solid #b9bec7; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.current td { font-weight: 600; background: #fff4e5; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .86em;
  background: var(--soft); padding: .05em .3em; border-radius: 3px; overflow-wrap: break-word; }
td:first-child code { white-space: nowrap; }
pre { background: var(--soft); padding: .7rem 1rem; border-radius: 6px; overflow-x: auto;
  white-space: pre-wrap; }
pre code { background: none; padding: 0; }
ul.branches { margin: .3rem 0 0; padding-left: 1.1rem; }
.doc { color: var(--muted); font-size: .88rem; display: block; }
figure { margin: 1.4rem 0; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--rule); }
.notes { border-left: 4px solid var(--rule); padding-left: 1rem; }
@media print {
  @page { margin: 15mm 13mm; }
  body { font-size: 10pt; }
  main { max-width: none; padding: 0; }
  nav.toc { display: none; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  figure, tr, pre, .keep { break-inside: avoid; page-break-inside: avoid; }
  figure img { border: none; max-height: 120mm; width: auto; }
  thead { display: table-header-group; }
  div.table { overflow: visible; }
  table { font-size: 8.5pt; }
  th, td { padding: .25rem .35rem; }
  .num, td:first-child code { white-space: normal; }
  thead th, code, pre, tr.current td { background: none; }
  a { color: inherit; text-decoration: none; }
}
"""


def esc(text: Any) -> str:
    """Text escaped for HTML content and attribute values."""
    return html.escape(str(text), quote=True)


def expr_html(value: Any, signed: bool = False) -> str:
    """A number of the scenario as written (never rounded), true/false, or an expression in
    <code>."""
    if isinstance(value, bool):
        return f"<code>{str(value).lower()}</code>"
    if isinstance(value, (int, float)):
        return esc(written_signed(value) if signed else written(value))
    return f"<code>{esc(value)}</code>"


def markdown_html(text: str) -> str:
    """Teaching notes as HTML: CommonMark without raw HTML or images; headings start at h3."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).disable("image")
    tokens = md.parse(text)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1]) + 2)}"
    return md.renderer.render(tokens, md.options, {})


def html_table(
    head: Sequence[str],
    rows: Sequence[Sequence[str]],
    num: Sequence[int] = (),
    classes: Sequence[str] | None = None,
) -> str:
    """An HTML table; cells are already HTML; columns in `num` are right-aligned numbers."""

    def cells(tag: str, values: Sequence[str]) -> str:
        return "".join(
            f"<{tag}{' class=num' if i in num else ''}>{v}</{tag}>" for i, v in enumerate(values)
        )

    body = []
    for r, row in enumerate(rows):
        cls = f' class="{classes[r]}"' if classes and classes[r] else ""
        body.append(f"<tr{cls}>{cells('td', row)}</tr>")
    return (
        f'<div class="table"><table><thead><tr>{cells("th", head)}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def range_text(lo: float | None, hi: float | None) -> str:
    """A range as 'any', '≥ 0', '≤ 1' or '0 – 1' (the bounds as written)."""
    if lo is None and hi is None:
        return "any"
    if hi is None:
        return f"≥ {written(lo)}"
    if lo is None:
        return f"≤ {written(hi)}"
    return f"{written(lo)} – {written(hi)}"


def _png_size(data: bytes) -> tuple[int, int]:
    return struct.unpack(">II", data[16:24])


def figure_html(data: bytes, alt: str, caption: str) -> str:
    """A PNG embedded as a data URI, with its size, alt text and caption."""
    width, height = _png_size(data)
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return (
        f'<figure><img src="{uri}" alt="{esc(alt)}" width="{width}" height="{height}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def section(anchor: str, title: str, body: str) -> str:
    """A page section with its anchor and heading."""
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>{body}</section>'


def payoff_parts(payoffs: Mapping[str, Any]) -> list[str]:
    """Each actor's payoff, signed, as HTML."""
    return [f"{esc(a)} {expr_html(v, signed=True)}" for a, v in payoffs.items()]


def payoffs_html(payoffs: Mapping[str, Any]) -> str:
    """Payoffs on one line."""
    return "; ".join(payoff_parts(payoffs))


def effects_html(effects: Effects) -> str:
    """Effects on the state on one line."""
    return "; ".join(effect_parts(effects))


def effect_parts(effects: Effects) -> list[str]:
    """Each effect on the state (`x +1`, `x += expr`, `x = expr`) as HTML."""
    parts = []
    for name, value in effects.add.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            parts.append(f"{esc(name)} {esc(written_signed(value))}")
        else:
            parts.append(f"{esc(name)} += {expr_html(value)}")
    parts += [f"{esc(name)} = {expr_html(value)}" for name, value in effects.set.items()]
    return parts
