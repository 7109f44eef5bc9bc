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


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~&:\"'=$%@^])")


def md_text(value: Any) -> str:
    """Markdown text that renders as the literal characters.

    Every ASCII punctuation mark that Markdown could read as syntax is
    backslash-escaped (CommonMark allows escaping any ASCII punctuation); newlines
    become hard line breaks so the lines stay apart.
    """
    escaped = _MD_SPECIAL.sub(r"\\\1", str(value))
    return escaped.replace("\n", "\\\n")


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
