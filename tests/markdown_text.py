"""Read back text that the template escaped for Markdown (importable from every test folder).

The text is rendered by a real CommonMark parser (markdown-it-py, which rich already
depends on) and the tags are dropped: what remains is what a reader of the rendered page
sees, so a round trip through the template's ``md_text`` filter and this function tests
the filter against the Markdown standard rather than against a mirror of its own rules.
"""

from __future__ import annotations

import html
import re

from markdown_it import MarkdownIt

_PARSER = MarkdownIt("commonmark")
_TAG = re.compile(r"<[^>]+>")


def md_unescape(text: str) -> str:
    """Return the characters a reader sees once ``text`` (Markdown) is rendered."""
    rendered = _PARSER.render(text)
    return html.unescape(_TAG.sub("", rendered)).rstrip("\n")
