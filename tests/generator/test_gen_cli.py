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
    pytest.param(
        ["batch_max_wait_ms=-1"], ["batch_max_wait_ms", "between 0 and 1000, got -1"], id="wait-neg"
    ),
    pytest.param(
        ["api_port=99999999999999999999999"], ["api_port", "between 1024 and 65535"], id="port-huge"
    ),
    pytest.param(["api_port=+8000"], ["api_port", "written plainly (8000)"], id="port-plus"),
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
    assert result.stdout.splitlines()[0] == f"Created {tmp_path / 'model-service'}"


def test_next_steps_name_the_project_just_made(tmp_path: Path) -> None:
    result = servegen(
        "new",
        "my svc",
        "--no-input",
        "-s",
        "python_version=3.12",
        "-s",
        "api_port=9000",
        cwd=tmp_path,
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"Created {tmp_path / 'my svc'}"
    assert lines[1:] == [
        "",
        "Next steps",
        "  Run it here (needs python3.12 and make):",
        "    cd 'my svc'",
        "    make venv          # .venv with the pinned dependencies",
        "    make demo-model    # a small demo model in models/",
        "    make run           # serve it at http://127.0.0.1:9000/docs (no database)",
        "    make test          # the project's own tests",
        "  Or with Docker:",
        "    # build the image, start the stack, probe it over HTTP and SQL, tear it down",
        "    servegen test 'my svc'",
        "    # start the database, a demo model server and the service; no .env needed",
        "    cd 'my svc' && docker compose -f compose.yaml -f compose.demo.yaml"
        " up -d --build --wait",
    ]


def test_new_into_an_empty_folder_needs_no_force(tmp_path: Path) -> None:
    folder = tmp_path / "svc"
    folder.mkdir()
    inode = folder.stat().st_ino
    result = servegen("new", ".", "--no-input", cwd=folder)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"Created {folder}"
    assert "cd " not in result.stdout  # already there
    assert "    servegen test ." in result.stdout.splitlines()
    assert folder.stat().st_ino == inode  # the folder stays: a shell inside it keeps working
    assert (folder / ".servegen-answers.yml").is_file()
    assert not [p for p in folder.iterdir() if p.name.startswith(".servegen-new-")]
    result = servegen("new", ".", "--no-input", cwd=folder)
    assert result.exit_code == 2  # no longer empty: --force renders into it again
    assert "already exists" in result.stderr


def test_new_into_an_empty_folder_with_questions(tmp_path: Path) -> None:
    folder = tmp_path / "svc"
    folder.mkdir()
    result = servegen("new", ".", input="\n" * 17, cwd=folder)
    assert result.exit_code == 0, result.output
    assert f"Create the project in the empty folder {folder}? [Y/n]: " in result.stdout
    assert (folder / ".servegen-answers.yml").is_file()


def test_no_input_is_a_flag(tmp_path: Path) -> None:
    help_text = servegen("new", "--help").stdout
    line = next(ln for ln in help_text.splitlines() if "--no-input " in ln and "Ask nothing" in ln)
    assert "<bool>" not in line, line
    assert "<bool>" not in help_text  # --force and --help are flags too
    assert_refused(
        servegen("new", "--no-input=true", cwd=tmp_path), tmp_path, "--no-input", "take a value"
    )
    # A word after the flag is DEST, as for any flag.
    result = servegen("new", "mydir", "--no-input", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "mydir" / ".servegen-answers.yml").is_file()


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
        "2",  # torch by number among those offered for 3.13: 2.9.1
        "CUDA",  # accelerator, any letter case
        "",  # task
        "",  # model format
        "80",  # refused
        "9000",
        "",  # db name
        "maybe",  # refused
        "no",  # batching: its size and wait are not asked
        "",  # kubernetes: keep the default (no)
        "",  # the confirmation: yes
    ]
    result = servegen("new", input="\n".join(answers) + "\n", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert "[6/16] Python version 1) 3.11  2) 3.12  3) 3.13 [3.11]: " in result.stdout
    # Only the torch releases with wheels for Python 3.13 are offered.
    assert "[7/16] PyTorch version 1) 2.13.0  2) 2.9.1 [2.13.0]: " in result.stdout
    assert "[2/16] Project slug (directory and distribution name) [fraud-scorer]" in result.stdout
    assert "[3/16] Python package name [fraud_scorer]" in result.stdout
    assert "[13/16] Enable dynamic micro-batching? (yes/no) [yes]: " in result.stdout
    # After "no", the batch size and wait are not asked: the last question is 14 of 14.
    assert "[14/14] Also render Kubernetes manifests" in result.stdout
    assert "[15/" not in result.stdout
    assert "invalid: torch 2.5.1 has no wheels for Python 3.13" in result.stderr
    assert "invalid: must be between 1024 and 65535, got 80" in result.stderr
    assert "invalid: must be yes or no, got 'maybe'" in result.stderr
    assert "Summary" in result.stdout
    assert "batch_max_wait_ms  5  (not asked: used only when batching is yes)" in result.stdout
    recorded = (tmp_path / "fraud-scorer" / ".servegen-answers.yml").read_text()
    assert 'torch_version: "2.9.1"' in recorded
    assert 'accelerator: "cuda"' in recorded
    assert "api_port: 9000" in recorded
    assert "batching: false" in recorded
    assert "batch_max_size: 32" in recorded  # not asked, still recorded


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
    assert "[1/15] Project slug" in result.stdout
    assert (tmp_path / "given").is_dir()


def test_a_set_value_narrows_the_choices_asked(tmp_path: Path) -> None:
    result = servegen(
        "new", "--set", "torch_version=2.5.1", input="\n" * 5 + "3\n2\n" + "\n" * 20, cwd=tmp_path
    )
    assert result.exit_code == 0, result.output
    assert "Python version 1) 3.11  2) 3.12 [3.11]: " in result.stdout
    assert "invalid: 3 is not a number in the list (1-2)" in result.stderr
    assert (
        'python_version: "3.12"'
        in (tmp_path / "model-service" / ".servegen-answers.yml").read_text()
    )


def test_clashing_set_values_are_refused_before_any_question(tmp_path: Path) -> None:
    result = servegen(
        "new",
        "-s",
        "python_version=3.13",
        "-s",
        "torch_version=2.5.1",
        input="\n" * 20,
        cwd=tmp_path,
    )
    assert_refused(result, tmp_path, "torch 2.5.1 has no wheels for Python 3.13", "(from --set)")
    assert "[1/" not in result.stdout


def test_help_on_request(tmp_path: Path) -> None:
    result = servegen("new", "-s", "batching=no", input="\n" * 8 + "?\n" + "\n" * 6, cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert "cpu builds from the CPU wheel index; cuda reserves a GPU." not in result.stdout
    assert "the top labels with scores out." in result.stdout  # task, the 9th question
    assert result.stdout.count("[9/13] What the model does") == 2  # asked again after help


def test_the_range_is_told_for_a_negative_number(tmp_path: Path) -> None:
    result = servegen("new", input="\n" * 14 + "-1\n08\n\n\n\n", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert "invalid: must be between 0 and 1000, got -1" in result.stderr
    assert "invalid: must be a whole number written plainly (8), got '08'" in result.stderr


def test_no_at_the_confirmation_writes_nothing_and_exits_7(tmp_path: Path) -> None:
    result = servegen("new", input="\n" * 16 + "n\n", cwd=tmp_path)
    assert result.exit_code == 7, result.output
    assert result.stderr.strip() == (
        "stopped: nothing was written (answered no at the confirmation)"
    )
    assert f"Create {tmp_path / 'model-service'}? [Y/n]: " in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_input_ending_at_the_confirmation_writes_nothing(tmp_path: Path) -> None:
    result = servegen("new", input="\n" * 16, cwd=tmp_path)
    assert_refused(result, tmp_path, "input ended before the confirmation was answered")


def test_an_unclear_confirmation_is_asked_again(tmp_path: Path) -> None:
    result = servegen("new", input="\n" * 16 + "perhaps\n?\nyes\n", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert "invalid: answer yes or no" in result.stderr
    assert "no writes nothing (exit 7)" in result.stdout
    assert (tmp_path / "model-service").is_dir()


def test_an_existing_dest_is_refused_before_the_questions(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "mine.txt").write_text("keep me")
    result = servegen("new", "svc", input="\n" * 20, cwd=tmp_path)
    assert result.exit_code == 2
    assert "already exists" in result.stderr
    assert "[1/" not in result.stdout


def test_nothing_is_asked_when_every_answer_is_given(tmp_path: Path) -> None:
    answers = tmp_path.parent / f"{tmp_path.name}-answers.json"
    answers.write_text(json.dumps({"project_name": "All", "batching": False}))
    sets = ["-s", "python_version=3.12", "-s", "torch_version=2.9.1", "-s", "accelerator=cpu"]
    sets += ["-s", "task=tensor", "-s", "model_format=export", "-s", "api_port=8000"]
    sets += ["-s", "project_slug=all", "-s", "package_name=all", "-s", "db_name=all"]
    sets += ["-s", "description=d", "-s", "author=a", "-s", "kubernetes=no"]
    result = servegen("new", "--answers", str(answers), *sets, input="", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Created {tmp_path / 'all'}\n")
    assert "Summary" not in result.stdout


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
