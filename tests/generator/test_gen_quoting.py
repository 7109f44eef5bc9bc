"""The template's one quoter: TOML, YAML and JSON readers all read every value back.

``quote_str`` serves as both the ``toml_str`` and the ``yaml_str`` filter, so each of
the three readers must get back exactly the text that went in, for every character a
string can hold: controls, line separators, the byte-order mark, non-characters and
characters beyond the BMP included.
"""

from __future__ import annotations

import json
import sys
import tomllib

import pytest
import yaml
from gen_helpers import TEMPLATE_DIR

sys.path.insert(0, str(TEMPLATE_DIR))
from servegen_ext import ServegenExtension, quote_str

sys.path.remove(str(TEMPLATE_DIR))

#: Every Unicode scalar value (surrogates are not text: no UTF-8 file can hold one).
SCALARS = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]

#: The characters that must be escaped for one reader or another, all in one string.
HARD = "".join(map(chr, [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, 0xFEFF, 0xFFFE]))


def read_back(quoted: str) -> dict[str, str]:
    """The value each reader finds in the quoted text."""
    return {
        "toml": tomllib.loads(f"v = {quoted}\n")["v"],
        "yaml": yaml.safe_load(f"v: {quoted}\n")["v"],
        "json": json.loads(quoted),
    }


@pytest.mark.parametrize(
    "value",
    [
        "",
        'plain "quoted" \\ back\\slash',
        "line\nbreak\ttab\r\nwindows",
        HARD,
        "\uffff" + HARD + "\uffff",
        "Zoë 日本 😀 \U0010ffff \u00a0 {{ x }} # not: a comment",
    ],
    ids=["empty", "quotes", "whitespace", "controls", "noncharacters", "unicode"],
)
def test_every_reader_reads_the_value_back(value: str) -> None:
    assert read_back(quote_str(value)) == {"toml": value, "yaml": value, "json": value}


def test_every_unicode_scalar_value_reads_back() -> None:
    chunk = 8192
    for start in range(0, len(SCALARS), chunk):
        value = "".join(map(chr, SCALARS[start : start + chunk]))
        found = read_back(quote_str(value))
        for reader, text in found.items():
            assert text == value, f"{reader} changed U+{SCALARS[start]:04X}.."


def test_controls_and_line_separators_never_appear_raw() -> None:
    quoted = quote_str(HARD + "\uffff")
    assert quoted.isascii() and quoted.isprintable()
    assert quote_str("\r") == '"\\u000D"'
    assert quote_str('"\\\n\t') == '"\\"\\\\\\n\\t"'


def test_one_quoter_is_both_the_toml_and_the_yaml_filter() -> None:
    from jinja2 import Environment

    filters = Environment(extensions=[ServegenExtension]).filters
    assert filters["toml_str"] is filters["yaml_str"] is quote_str
