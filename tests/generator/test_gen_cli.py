"""servegen's command line: every bad input gets exit 2, one clear line, no files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gen_helpers import servegen

from generator import __version__


def assert_refused(result, cwd: Path, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert list(cwd.iterdir()) == [], "a refused render must write nothing"


BAD_SETS = [
    pytest.param(["project_slug=a/b"], ["project_slug", "start with a letter"], id="slug-slash"),
    pytest.param(["project_slug=.."], ["project_slug"], id="slug-dotdot"),
    pytest.param(["project_slug=   "], ["project_slug"], id="slug-spaces"),
    pytest.param(["project_slug="], ["project_slug", "empty"], id="slug-empty"),
    pytest.param(["project_slug=1service"], ["project_slug"], id="slug-digit"),
    pytest.param(["project_name=a/b"], ["project_name", "'/'"], id="name-slash"),
    pytest.param(["project_name=x..y"], ["project_name", "'..'"], id="name-dotdot"),
    pytest.param(["project_name=   "], ["project_name", "spaces only"], id="name-spaces"),
    pytest.param(["project_name="], ["project_name", "empty"], id="name-empty"),
    pytest.param(["project_name=1st Service"], ["project_name", "letter"], id="name-digit"),
    pytest.param(["project_name=日本語"], ["project_slug", "empty"], id="name-no-ascii"),
    pytest.param(["package_name=class"], ["package_name", "keyword"], id="pkg-keyword"),
    pytest.param(["package_name=match"], ["package_name", "keyword"], id="pkg-softkeyword"),
    pytest.param(["package_name=torch"], ["package_name", "shadow"], id="pkg-torch"),
    pytest.param(["package_name=fastapi"], ["package_name", "shadow"], id="pkg-fastapi"),
    pytest.param(["package_name=test"], ["package_name", "shadow"], id="pkg-test"),
    pytest.param(["project_name=Torch"], ["package_name", "shadow"], id="derived-pkg-torch"),
    pytest.param(["package_name=My-Pkg"], ["package_name"], id="pkg-dash"),
    pytest.param(["api_port=80"], ["api_port", "1024 and 65535"], id="port-low"),
    pytest.param(["api_port=65536"], ["api_port", "1024 and 65535"], id="port-high"),
    pytest.param(["api_port=80a"], ["api_port", "whole number"], id="port-text"),
    pytest.param(["api_port=08000"], ["api_port", "whole number"], id="port-leading-zero"),
    pytest.param(["nosuchoption=1"], ["nosuchoption", "unknown option"], id="set-unknown"),
    pytest.param(["_template=x"], ["_template", "unknown option"], id="set-private"),
    pytest.param(["api_port"], ["--set expects KEY=VALUE"], id="set-no-equals"),
    pytest.param(["=1"], ["--set expects KEY=VALUE"], id="set-no-key"),
    pytest.param(
        ["python_version=3.13", "torch_version=2.5.1"],
        ["python_version", "torch 2.5.1", "3.13", "supported: 3.11, 3.12"],
        id="python-unsupported-by-torch",
    ),
    pytest.param(["python_version=3.10"], ["python_version", "not one of"], id="python-unknown"),
    pytest.param(["accelerator=tpu"], ["accelerator", "not one of"], id="accelerator-unknown"),
    pytest.param(["batching=maybe"], ["batching", "yes or no"], id="bool-bad"),
    pytest.param(["batch_max_size=0"], ["batch_max_size", "between 1 and 4096"], id="batch-0"),
    pytest.param(["batch_max_wait_ms=1001"], ["batch_max_wait_ms"], id="wait-high"),
    pytest.param(["db_name=my-db"], ["db_name"], id="db-dash"),
    pytest.param(["db_name=mysql"], ["db_name", "MySQL system schema"], id="db-mysql"),
    pytest.param(["db_name=sys"], ["db_name", "system schema"], id="db-sys"),
    pytest.param(
        ["db_name=INFORMATION_SCHEMA"], ["db_name", "system schema"], id="db-information-schema"
    ),
    pytest.param(["db_name=performance_schema"], ["db_name", "system schema"], id="db-perf"),
    pytest.param(["project_name=Mysql"], ["db_name", "system schema"], id="derived-db-mysql"),
    pytest.param(["description=bell\x07"], ["description", "control character"], id="desc-ctl"),
    pytest.param(["author=two\nlines"], ["author", "single line"], id="author-newline"),
]


@pytest.mark.parametrize(("sets", "needles"), BAD_SETS)
def test_bad_set_values_are_refused(tmp_path: Path, sets: list[str], needles: list[str]) -> None:
    args = ["new", "--no-input"]
    for item in sets:
        args += ["--set", item]
    assert_refused(servegen(*args, cwd=tmp_path), tmp_path, *needles)


BAD_FILES = [
    pytest.param("answers.yml", "project_name: [unclosed\n", ["not valid YAML"], id="yaml-syntax"),
    pytest.param("answers.json", '{"project_name": ', ["not valid JSON"], id="json-syntax"),
    pytest.param("answers.yml", "- a\n- b\n", ["expected a mapping"], id="yaml-list"),
    pytest.param("answers.yml", "api_port: [1]\n", ["api_port", "whole number"], id="port-list"),
    pytest.param("answers.yml", "api_port: 80.5\n", ["api_port", "whole number"], id="port-float"),
    pytest.param("answers.yml", "batching: 3\n", ["batching", "yes or no"], id="bool-int"),
    pytest.param(
        "answers.yml", "python_version: 3.12\n", ["python_version", "quote it"], id="py-float"
    ),
    pytest.param("answers.yml", "project_name: 12\n", ["project_name", "text"], id="name-int"),
    pytest.param("answers.json", '{"author": null}', ["author", "text"], id="author-null"),
    pytest.param("answers.yml", "colour: red\n", ["colour", "unknown option"], id="unknown"),
    pytest.param(
        "answers.yml", "_template: other\n", ["written for template 'other'"], id="template"
    ),
    pytest.param(
        "answers.json",
        json.dumps({"python_version": "3.13", "torch_version": "2.5.1"}),
        ["torch 2.5.1 has no wheels for Python 3.13"],
        id="combination",
    ),
]


@pytest.mark.parametrize(("name", "content", "needles"), BAD_FILES)
def test_bad_answers_files_are_refused(
    tmp_path: Path, name: str, content: str, needles: list[str]
) -> None:
    answers = tmp_path.parent / f"{tmp_path.name}-{name}"
    answers.write_text(content, encoding="utf-8")
    result = servegen("new", "--no-input", "--answers", str(answers), cwd=tmp_path)
    assert_refused(result, tmp_path, *needles)


def test_missing_answers_file_is_refused(tmp_path: Path) -> None:
    result = servegen("new", "--no-input", "--answers", "nope.yml", cwd=tmp_path)
    assert_refused(result, tmp_path, "cannot read answers file", "nope.yml")


def test_unknown_flag_is_one_line(tmp_path: Path) -> None:
    assert_refused(servegen("new", "--bogus", cwd=tmp_path), tmp_path, "--bogus")


def test_existing_destination_is_refused_without_force(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "mine.txt").write_text("keep me")
    result = servegen("new", "svc", "--no-input", cwd=tmp_path)
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: ")
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert (tmp_path / "svc" / "mine.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["svc"]


def test_force_refuses_a_folder_that_is_not_a_project(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "mine.txt").write_text("keep me")
    result = servegen("new", "svc", "--no-input", "--force", cwd=tmp_path)
    assert result.exit_code == 2
    assert "not a servegen project" in result.stderr
    assert (tmp_path / "svc" / "mine.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["svc"]


def test_force_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "svc").write_text("a file")
    result = servegen("new", "svc", "--no-input", "--force", cwd=tmp_path)
    assert result.exit_code == 2
    assert "not a directory" in result.stderr
    assert (tmp_path / "svc").read_text() == "a file"


def test_version() -> None:
    result = servegen("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"servegen {__version__}"
    assert __version__ != "0+unknown"


def test_python_dash_m_runs_the_cli() -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "generator", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"servegen {__version__}"


def test_new_with_defaults_creates_the_slug_folder(tmp_path: Path) -> None:
    result = servegen("new", "--no-input", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert [p.name for p in tmp_path.iterdir()] == ["model-service"]
    assert f"Created {tmp_path / 'model-service'}" in result.stdout


def test_output_dir_and_dest(tmp_path: Path) -> None:
    result = servegen("new", "x/svc", "--no-input", "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "x" / "svc" / ".servegen-answers.yml").is_file()
    # The staging folder next to the destination is gone.
    assert [p.name for p in (tmp_path / "out" / "x").iterdir()] == ["svc"]


def test_prompts_show_choices_and_defaults_and_reask(tmp_path: Path) -> None:
    answers = [
        "Fraud Scorer",  # project_name
        "",  # slug: keep derived
        "",  # package
        "",  # description
        "",  # author
        "3.13",  # python
        "2.5.1",  # torch: refused for 3.13, asked again
        "2",  # torch by number: 2.9.1
        "",  # accelerator
        "",  # task
        "",  # model format
        "80",  # refused
        "9000",
        "",  # db name
        "maybe",  # refused
        "no",
        "",  # batch_max_size
        "",  # batch_max_wait_ms
        "",  # kubernetes: keep the default (no)
    ]
    result = servegen("new", input="\n".join(answers) + "\n", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert "Python version (3.11/3.12/3.13) [3.11]" in result.stdout
    assert "Project slug (directory and distribution name) [fraud-scorer]" in result.stdout
    assert "Python package name [fraud_scorer]" in result.stdout
    assert "invalid: torch 2.5.1 has no wheels for Python 3.13" in result.stderr
    assert "invalid: must be between 1024 and 65535, got 80" in result.stderr
    assert "invalid: must be yes or no, got 'maybe'" in result.stderr
    recorded = (tmp_path / "fraud-scorer" / ".servegen-answers.yml").read_text()
    assert 'torch_version: "2.9.1"' in recorded
    assert "api_port: 9000" in recorded
    assert "batching: false" in recorded


def test_prompts_skip_options_given_with_set(tmp_path: Path) -> None:
    result = servegen(
        "new",
        "--set",
        "project_name=Given",
        input="\n" * 20,
        cwd=tmp_path,
    )
    assert result.exit_code == 0, result.output
    assert "Project name" not in result.stdout
    assert (tmp_path / "given").is_dir()


def test_closed_input_is_a_clear_error(tmp_path: Path) -> None:
    result = servegen("new", input="", cwd=tmp_path)
    assert_refused(result, tmp_path, "input ended", "--no-input")


def test_options_table_json_and_markdown() -> None:
    table = servegen("options")
    assert table.exit_code == 0
    for name in ("project_name", "torch_version", "batch_max_wait_ms", "2.13.0"):
        assert name in table.stdout
    data = json.loads(servegen("options", "--json").stdout)
    by_name = {o["name"]: o for o in data["options"]}
    assert by_name["python_version"]["choices"] == ["3.11", "3.12", "3.13"]
    assert by_name["api_port"]["default"] == 8000
    assert by_name["batching"]["default"] is True
    assert by_name["project_slug"]["derived_from"] == ["project_name"]
    assert all(o["help"] for o in data["options"])
    markdown = servegen("options", "--markdown").stdout
    assert markdown.startswith("# Options reference")


def test_docs_options_md_is_current() -> None:
    from gen_helpers import REPO_ROOT

    from generator import reference
    from generator.template import load_template

    committed = (REPO_ROOT / "docs" / "options.md").read_text(encoding="utf-8")
    assert committed == reference.markdown(load_template()), (
        "docs/options.md is stale: run `servegen options --markdown > docs/options.md`"
    )


def test_test_command_refuses_a_missing_directory(tmp_path: Path) -> None:
    result = servegen("test", str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert "does not exist" in result.stderr


def test_help_lists_the_commands() -> None:
    result = servegen("--help")
    assert result.exit_code == 0
    for command in ("new", "options", "test"):
        assert command in result.stdout


def test_test_command_refuses_a_bad_timeout(tmp_path: Path) -> None:
    result = servegen("test", str(tmp_path), "--ready-timeout", "0")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "--ready-timeout" in result.stderr
    assert len(result.stderr.splitlines()) == 1
