"""Jinja filters of the torch-fastapi template.

cookiecutter loads this module through ``_extensions`` in ``cookiecutter.json`` (the
template folder is on ``sys.path`` while it renders). Every value that the template
places into TOML, YAML, JSON, Python or Markdown goes through the filter for that
format, so free text (quotes, backslashes, newlines, ``{{``, ``#``, ``:``, unicode)
comes out as a literal that reads back unchanged.
"""

from __future__ import annotations

import json
import re
from typing import Any

import servegen_rules
from jinja2 import Environment
from jinja2.ext import Extension


def json_str(value: Any) -> str:
    """Dump a value as JSON, non-ASCII kept as is (files are UTF-8)."""
    return json.dumps(value, ensure_ascii=False)


def _must_escape(code: int) -> bool:
    r"""Tell whether a character goes into a quoted string as ``\uXXXX``.

    The union of what TOML basic strings forbid raw (C0 controls, DEL) and what YAML
    readers refuse raw or read as a line break (C1 controls, surrogates, U+2028,
    U+2029, the byte-order mark, U+FFFE, U+FFFF). Ref: TOML 1.0 "String"; YAML 1.2.2
    section 5.1 "Character Set".
    """
    return (
        code < 0x20
        or 0x7F <= code <= 0x9F
        or 0xD800 <= code <= 0xDFFF
        or code in (0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF)
    )


def quote_str(value: Any) -> str:
    r"""Quote text as one double-quoted string that TOML, YAML and JSON all read back.

    A TOML basic string, a YAML double-quoted scalar and a JSON string share this
    syntax: ``\"``, ``\\``, ``\n``, ``\t`` and ``\uXXXX`` escapes mean the same in all
    three, so one quoter serves every structured file the template writes. (A lone
    surrogate is not text: the rules refuse it, and no UTF-8 file could hold it.)
    """
    out = ['"']
    for ch in str(value):
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif _must_escape(ord(ch)):
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def py_str(value: Any) -> str:
    """Quote text as a Python string literal (``repr`` of a str always is one)."""
    return repr(str(value))


#: Marks that may start Markdown syntax anywhere in a line (``#`` because a run of them
#: ends an ATX heading, as in "# Fraud Scorer #").
_MD_ANYWHERE = re.compile(r"([\\`*_\[\]<>|~&#])")
#: Marks that start a block only at the beginning of a line (lists, headings, rules).
_MD_LINE_START = re.compile(r"^([+\-=])")
_MD_ORDERED = re.compile(r"^(\d+)([.)])")


def _md_spaces(spaces: str) -> str:
    # Leading blanks would start a code block, trailing ones vanish or make a line break
    # (and some renderers trim every Unicode space at either end of a paragraph):
    # character references keep them as they are.
    return "".join(f"&#{ord(ch)};" for ch in spaces)


def md_text(value: Any) -> str:
    """Markdown text that renders as the literal characters, escaped no more than needed.

    Only the marks that CommonMark could read as syntax where they stand are
    backslash-escaped (so "with FastAPI." and "Scorer!" stay as typed in the raw file),
    leading and trailing blanks become character references, and newlines become hard
    line breaks so the lines stay apart.
    Ref: https://spec.commonmark.org/0.31.2/#backslash-escapes
    """
    lines = []
    for line in str(value).split("\n"):
        body = line.strip()
        lead = line[: len(line) - len(line.lstrip())]
        trail = line[len(line.rstrip()) :] if body else ""
        body = _MD_ANYWHERE.sub(r"\\\1", body)
        body = _MD_ORDERED.sub(r"\1\\\2", _MD_LINE_START.sub(r"\\\1", body))
        lines.append(_md_spaces(lead) + body + _md_spaces(trail))
    return "\\\n".join(lines)


def comment_text(value: Any) -> str:
    """Text for a single-line ``#`` comment: newlines folded to spaces."""
    return " ".join(str(value).split())


def yaml_answer(value: Any, key: str) -> str:
    """Write one answer as a YAML scalar of its kind.

    Numbers stay numbers and yes/no answers booleans, so the recorded answers file
    reads back with the types a user would write by hand; everything else is quoted.
    """
    kind = servegen_rules.RULES[key].kind
    if kind == "int":
        return str(int(value))
    if kind == "bool":
        return "true" if servegen_rules.check_bool(key, value) else "false"
    return quote_str(value)


def torch_compat(version: str, field: str) -> Any:
    """Look up a field of the torch compatibility table."""
    return servegen_rules.load_compat()[version][field]


class ServegenExtension(Extension):
    """Registers the template's filters on the cookiecutter Jinja environment."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["servegen_slug"] = servegen_rules.derive_slug
        environment.filters["servegen_package"] = servegen_rules.derive_package
        # One quoter under the two names the template's files use for TOML and YAML.
        environment.filters["toml_str"] = quote_str
        environment.filters["yaml_str"] = quote_str
        environment.filters["json_str"] = json_str
        environment.filters["py_str"] = py_str
        environment.filters["md_text"] = md_text
        environment.filters["comment_text"] = comment_text
        environment.filters["torch_compat"] = torch_compat
        environment.filters["model_file"] = servegen_rules.model_file
        environment.filters["yaml_answer"] = yaml_answer
        # The hooks run as scripts from a temporary file, in the new project folder:
        # they learn where the template lives from this global, not from __file__
        # or from ``_repo_dir`` (which may be relative to a directory they cannot see).
        environment.globals["servegen_template_dir"] = str(servegen_rules.TEMPLATE_DIR)
        environment.globals["servegen_answer_keys"] = list(servegen_rules.ORDER)
