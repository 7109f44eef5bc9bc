"""Read back text that the template escaped for Markdown (importable from every test folder).

The template's ``md_text`` filter backslash-escapes ASCII punctuation and turns a newline
into a hard line break (a backslash before it). This inverse is written here, apart from
the filter, so that a round trip through both tests the filter instead of mirroring it.
"""

from __future__ import annotations

import re

_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()<>#+\-.!|~&:\"'=$%@^])")


def md_unescape(text: str) -> str:
    """Undo ``md_text``: hard line breaks back to newlines, escaped punctuation back to itself."""
    return _ESCAPED.sub(r"\1", text.replace("\\\n", "\n"))
