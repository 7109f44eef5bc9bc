"""Property tests: any free text renders a project that reads it back, or exit 2.

For each free-text option (project name, description, author) hypothesis draws
strings rich in the characters that break naive templates: quotes, backslashes,
newlines, tabs, ``{{``/``{%``, ``#``, ``:``, Markdown punctuation and non-ASCII. Each
string is either refused with exit code 2 and nothing written, or rendered into a
project where every TOML/YAML/JSON/Python file parses and the text reads back
unchanged from every place the template puts it (found with a sentinel render).
"""

from __future__ import annotations

import ast
import os
import sys
import tempfile
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from gen_helpers import TEMPLATE_DIR, parse, servegen, strings_in
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_text import md_unescape

sys.path.insert(0, str(TEMPLATE_DIR))
from servegen_ext import comment_text

sys.path.remove(str(TEMPLATE_DIR))

SPECIALS = [
    '"', "'", "\\", "\n", "\t", "{{", "}}", "{%", "%}", "{#", "#", ":", ": ", "- ", "`",
    "*", "_", "[", "]", "<", ">", "&", "$", "${X}", "%", "|", "=", "é", "日本", "😀",
    "\u00a0", "\\n", '"""', "'''", " ", "  ", "x", "Ab", "0",
]  # fmt: skip

PIECES = st.one_of(st.sampled_from(SPECIALS), st.text(max_size=4))
TEXT = st.lists(PIECES, max_size=10).map("".join)
NAME = st.one_of(st.tuples(st.sampled_from("AbZq"), TEXT).map("".join), TEXT)

SENTINEL = "Qz7Sentinel"


def render_with(field: str, value: str, dest: Path) -> Any:
    return servegen("new", str(dest), "--no-input", "--set", f"{field}={value}")


@cache
def sinks(field: str) -> dict[str, bool]:
    """Files where the template puts ``field``: path -> found as a parsed string."""
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "p"
        value = f"{SENTINEL} {field}" if field == "project_name" else SENTINEL
        result = render_with(field, value, dest)
        assert result.exit_code == 0, result.output
        recorded = yaml.safe_load((dest / ".servegen-answers.yml").read_text(encoding="utf-8"))
        out = {}
        for path in sorted(dest.rglob("*")):
            if path.is_file() and SENTINEL in path.read_text(encoding="utf-8", errors="replace"):
                rel = path.relative_to(dest).as_posix()
                # The package folder's name follows the project name: keep a placeholder.
                rel = rel.replace(recorded["package_name"], "{pkg}")
                out[rel] = any(SENTINEL in s for s in _strings(path))
        return out


def _strings(path: Path) -> list[str]:
    """String values of a parsed file (Python: string constants)."""
    if path.suffix == ".py":
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nodes = ast.walk(tree)
        return [n.value for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    data = parse(path)
    return strings_in(data) if data is not None else []


def check_project(project: Path, field: str, value: str) -> None:
    """Every file parses; the value reads back from each place that holds it."""
    for path in project.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".toml", ".yml", ".yaml", ".json"):
            _strings(path)  # raises when the file does not parse
    recorded = yaml.safe_load((project / ".servegen-answers.yml").read_text(encoding="utf-8"))
    assert recorded[field] == value
    # A one-line context (a comment, a metadata summary) may hold the documented fold.
    forms = {value, comment_text(value)}
    for rel, parsed in sinks(field).items():
        path = project / rel.replace("{pkg}", recorded["package_name"])
        if path.suffix == ".md":
            text = md_unescape(path.read_text(encoding="utf-8"))
            assert any(form in text for form in forms), f"{rel} lost the {field}"
        elif parsed:
            found = _strings(path)
            assert any(form in s for s in found for form in forms), f"{rel} lost the {field}"
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["name"] == recorded["project_slug"]


def check(field: str, value: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "p"
        result = render_with(field, value, dest)
        if result.exit_code == 2:
            assert result.stderr.startswith("error: "), result.output
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
            assert list(Path(tmp).iterdir()) == [], "a refused value wrote files"
            return
        assert result.exit_code == 0, result.output
        check_project(dest, field, value)


#: Each example renders a project (a fraction of a second), so the count stays modest;
#: SERVEGEN_PROPERTY_EXAMPLES raises it for a deeper search.
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("SERVEGEN_PROPERTY_EXAMPLES", "20")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY_SETTINGS
@given(value=TEXT)
def test_description_round_trips_or_is_refused(value: str) -> None:
    check("description", value)


@PROPERTY_SETTINGS
@given(value=TEXT)
def test_author_round_trips_or_is_refused(value: str) -> None:
    check("author", value)


@PROPERTY_SETTINGS
@given(value=NAME)
def test_project_name_round_trips_or_is_refused(value: str) -> None:
    check("project_name", value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("description", 'He said "{{ x }}" \\ then\n# not a heading: *really*'),
        ("author", "Zoë O'Brien <zoe@example.org> # ml: team"),
        ("project_name", "Ünïcode {% raw %} Näme"),
    ],
)
def test_known_hard_values_round_trip(field: str, value: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "p"
        result = render_with(field, value, dest)
        assert result.exit_code == 0, result.output
        check_project(dest, field, value)


def test_the_free_text_reaches_the_project() -> None:
    # Guard for the property tests: they are only as strong as the sinks they find.
    assert "README.md" in sinks("project_name")
    assert ".servegen-answers.yml" in sinks("description")
    assert "pyproject.toml" in sinks("description")
