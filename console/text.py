"""Text that operators, workers or stored values supply, made safe for where Streamlit and Plotly show it.

Streamlit renders alert, caption and badge bodies as markdown, and Plotly hover text as a subset of
HTML: a stored value ``[Log in again](http://…)`` would become a link, ``![x](http://…)`` would make
every viewer's browser fetch a URL, a login name ``<a href=…>`` a link in a chart. These functions make
such text literal; use them for anything a person or a stored value chose.
"""

from __future__ import annotations

import html
import re


def code_span(text: str) -> str:
    """Markdown inline code that wraps (unlike ``st.code``); a longer fence when the text holds a backtick."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {text} {fence}" if longest else f"`{text}`"


def md_text(text: object) -> str:
    """``text`` as a markdown code span: shown character for character, never a link, an image, emphasis, a
    directive or a formula (backslash escapes would not do: GFM still turns a bare ``http://…`` into a link).
    Line breaks become spaces so that a value cannot start a block of its own."""
    flat = " ".join(str(text).splitlines()).strip()
    return code_span(flat) if flat else ""


def plotly_text(text: object) -> str:
    """``text`` for Plotly hover and labels: its HTML-like tags and entities shown as typed."""
    return html.escape(str(text), quote=False)
