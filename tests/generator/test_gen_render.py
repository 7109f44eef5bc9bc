"""Rendering: same tree as plain cookiecutter, reproducible, atomic, derived values."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from gen_helpers import (
    TEMPLATE_DIR,
    private_home,
    render,
    render_cookiecutter,
    servegen,
    tree,
)

from generator.options import build_options
from generator.template import find_template, load_template

COOKIECUTTER = [sys.executable, "-m", "cookiecutter"]

TRICKY = {
    "project_name": "Ünïcode {{ x }} Fraud Scorer",
    "description": 'Says "hi" \\ {{ x }} {% y %} # z: w',
    "author": "Zoë O'Brien <zoe@example.org> # team: ml",
    "python_version": "3.12",
    "torch_version": "2.9.1",
    "accelerator": "cuda",
    "api_port": "9100",
    "batching": False,
    "batch_max_size": "1",
    "batch_max_wait_ms": "0",
}

ANSWER_SETS = [
    pytest.param({}, id="defaults"),
    pytest.param(TRICKY, id="tricky"),
    pytest.param({**TRICKY, "description": "two\nlines, \ttab"}, id="multiline"),
    pytest.param(
        {"project_name": "Svc", "project_slug": "my-svc", "package_name": "svc_pkg"},
        id="explicit-names",
    ),
]

#: cookiecutter's command-line extra context is evaluated as Jinja, so values with
#: template syntax are typed into its prompts instead (as a user would); a multi-line
#: value cannot be typed into a prompt, and plain cookiecutter cannot take one.
COOKIECUTTER_SETS = [
    pytest.param({}, False, id="defaults-no-input"),
    pytest.param({}, True, id="defaults-prompts"),
    pytest.param(TRICKY, True, id="tricky-prompts"),
    pytest.param(
        {"project_name": "Svc", "project_slug": "my-svc", "package_name": "svc_pkg"},
        False,
        id="explicit-names-no-input",
    ),
    pytest.param(
        {"project_name": "Svc Two", "python_version": "3.13", "accelerator": "cuda"},
        False,
        id="derived-no-input",
    ),
]


@pytest.mark.parametrize(("answers", "interactive"), COOKIECUTTER_SETS)
def test_servegen_and_cookiecutter_give_identical_trees(
    tmp_path: Path, answers: dict[str, Any], interactive: bool
) -> None:
    ours = render(answers, tmp_path / "servegen" / "project")
    (tmp_path / "cookiecutter").mkdir()
    theirs = render_cookiecutter(answers, tmp_path / "cookiecutter", interactive=interactive)
    a, b = tree(ours), tree(theirs)
    assert sorted(a) == sorted(b)
    differing = [name for name in a if a[name] != b[name]]
    assert not differing, f"files differ between servegen and cookiecutter: {differing}"
    # File modes follow the template (executable scripts stay executable).
    for name in a:
        assert (ours / name).stat().st_mode == (theirs / name).stat().st_mode, name
    # Both wrote their own random secrets.
    assert sorted(p.name for p in (ours / "secrets").iterdir()) == sorted(
        p.name for p in (theirs / "secrets").iterdir()
    )


@pytest.mark.parametrize("answers", ANSWER_SETS)
def test_rerender_from_recorded_answers_is_identical(
    tmp_path: Path, answers: dict[str, Any]
) -> None:
    first = render(answers, tmp_path / "first")
    recorded = first / ".servegen-answers.yml"
    result = servegen(
        "new", str(tmp_path / "second"), "--no-input", "--answers", str(recorded), cwd=tmp_path
    )
    assert result.exit_code == 0, result.output
    assert tree(first) == tree(tmp_path / "second")


def test_recorded_answers_without_no_input_ask_nothing(tmp_path: Path) -> None:
    first = render({"project_name": "Quiet"}, tmp_path / "first")
    result = servegen(
        "new", "second", "--answers", str(first / ".servegen-answers.yml"), input="", cwd=tmp_path
    )
    assert result.exit_code == 0, result.output
    assert tree(first) == tree(tmp_path / "second")


def _manifest(project: Path) -> dict[str, str]:
    recorded = yaml.safe_load((project / ".servegen-answers.yml").read_text(encoding="utf-8"))
    files = recorded["_files"]
    assert isinstance(files, dict)
    return files


def test_the_answers_file_records_the_hash_of_each_generated_file(tmp_path: Path) -> None:
    project = render({"project_name": "Hashed"}, tmp_path / "svc")
    files = _manifest(project)
    on_disk = sorted(p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file())
    # Every file but the answers file itself and the random passwords, in sorted order.
    expected = [
        rel
        for rel in on_disk
        if rel != ".servegen-answers.yml" and not re.fullmatch(r"secrets/[^/]+\.txt", rel)
    ]
    assert "src/hashed/app.py" in expected and "secrets/README.md" in expected
    assert list(files) == expected
    for rel, digest in files.items():
        assert hashlib.sha256((project / rel).read_bytes()).hexdigest() == digest, rel


def test_plain_cookiecutter_over_a_folder_records_only_generated_files(tmp_path: Path) -> None:
    # cookiecutter -f renders over an existing folder; the user's files there must not
    # enter the manifest, or a later re-render could take them for its own.
    (tmp_path / "model-service" / "src" / "model_service").mkdir(parents=True)
    (tmp_path / "model-service" / "notes.txt").write_text("mine")
    (tmp_path / "model-service" / "src" / "model_service" / "extra.py").write_text("x = 1\n")
    with private_home() as env:
        out = subprocess.run(
            [*COOKIECUTTER, "--no-input", "-f", "-o", str(tmp_path), str(TEMPLATE_DIR)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
        )
    assert out.returncode == 0, out.stderr
    files = _manifest(tmp_path / "model-service")
    assert "src/model_service/app.py" in files
    assert "notes.txt" not in files and "src/model_service/extra.py" not in files


def test_json_answers_file(tmp_path: Path) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(
        json.dumps({"project_name": "Json Svc", "api_port": 9001, "batching": False}),
        encoding="utf-8",
    )
    result = servegen("new", "--no-input", "--answers", str(answers), cwd=tmp_path)
    assert result.exit_code == 0, result.output
    recorded = yaml.safe_load((tmp_path / "json-svc" / ".servegen-answers.yml").read_text())
    assert recorded["api_port"] == 9001
    assert recorded["batching"] is False
    assert recorded["project_slug"] == "json-svc"


def test_set_wins_over_the_answers_file(tmp_path: Path) -> None:
    answers = tmp_path / "a.yml"
    answers.write_text("project_name: From File\napi_port: 9001\n", encoding="utf-8")
    result = servegen(
        "new", "p", "--no-input", "--answers", str(answers), "--set", "api_port=9002", cwd=tmp_path
    )
    assert result.exit_code == 0, result.output
    recorded = yaml.safe_load((tmp_path / "p" / ".servegen-answers.yml").read_text())
    assert (recorded["project_name"], recorded["api_port"]) == ("From File", 9002)


def test_derived_values_follow_until_set() -> None:
    template = load_template()
    options = build_options(template, sets=["project_name=Fraud Scorer"]).build()
    assert (options["project_slug"], options["package_name"], options["db_name"]) == (
        "fraud-scorer",
        "fraud_scorer",
        "fraud_scorer",
    )
    options = build_options(
        template, sets=["project_name=Fraud Scorer", "project_slug=risk-api"]
    ).build()
    assert (options["package_name"], options["db_name"]) == ("risk_api", "risk_api")
    options = build_options(template, sets=["package_name=core", "project_name=X Y"]).build()
    assert (options["project_slug"], options["package_name"], options["db_name"]) == (
        "x-y",
        "core",
        "core",
    )


def test_options_are_immutable() -> None:
    options = build_options(load_template()).build()
    with pytest.raises(TypeError):
        options.values["api_port"] = "1"  # type: ignore[index]
    with pytest.raises(AttributeError):
        options.values = {}  # type: ignore[misc]


def test_force_updates_the_generated_files_and_keeps_secrets(tmp_path: Path) -> None:
    project = render({"api_port": "9000"}, tmp_path / "svc")
    secrets = {p.name: p.read_bytes() for p in (project / "secrets").glob("*.txt")}
    assert secrets, "the post-generation hook wrote no secrets"
    (project / "stale.txt").write_text("not the template's")
    result = servegen("new", "svc", "--no-input", "--force", "--set", "api_port=9001", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert f"Updated {project}: " in result.stdout
    assert (project / "stale.txt").read_text() == "not the template's"
    assert "api_port: 9001" in (project / ".servegen-answers.yml").read_text()
    assert {p.name: p.read_bytes() for p in (project / "secrets").glob("*.txt")} == secrets
    assert sorted(p.name for p in tmp_path.iterdir()) == ["svc"]  # no staging left
    clean = render({"api_port": "9001"}, tmp_path / "clean")
    assert tree(project) == {**tree(clean), "stale.txt": b"not the template's"}


def _broken_template(tmp_path: Path) -> Path:
    broken = tmp_path / "broken-template"
    shutil.copytree(TEMPLATE_DIR, broken, ignore=shutil.ignore_patterns("__pycache__"))
    bad = broken / "{{cookiecutter.project_slug}}" / "zz_broken.txt"
    bad.write_text("{{ cookiecutter.no_such_answer }}\n", encoding="utf-8")
    return broken


def test_a_failed_render_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVEGEN_TEMPLATE_DIR", str(_broken_template(tmp_path)))
    work = tmp_path / "work"
    work.mkdir()
    result = servegen("new", "deep/er/svc", "--no-input", cwd=work)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
    assert "no_such_answer" in result.stderr
    assert list(work.iterdir()) == [], "parents, staging or project left behind"


def test_a_failed_force_render_keeps_the_old_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = render({}, tmp_path / "svc")
    before = tree(project, skip=())
    monkeypatch.setenv("SERVEGEN_TEMPLATE_DIR", str(_broken_template(tmp_path)))
    result = servegen("new", "svc", "--no-input", "--force", cwd=tmp_path)
    assert result.exit_code == 1
    assert tree(project, skip=()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken-template", "svc"]


def test_bytecode_in_the_template_never_reaches_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What pip leaves in an installed template: bytecode beside every module. (The
    # wheel test does it for real; this one runs in every quick test run.)
    compiled = tmp_path / "compiled-template"
    shutil.copytree(TEMPLATE_DIR, compiled)
    project_folder = compiled / "{{cookiecutter.project_slug}}"
    for module in sorted(project_folder.rglob("*.py")):
        cache = module.parent / "__pycache__"
        cache.mkdir(exist_ok=True)
        (cache / f"{module.stem}.cpython-311.pyc").write_bytes(b"\x00\x0d\x0d\x0a bytecode")
    (project_folder / "stray.pyo").write_bytes(b"\x00")
    monkeypatch.setenv("SERVEGEN_TEMPLATE_DIR", str(compiled))
    ours = render({}, tmp_path / "from-compiled")
    monkeypatch.delenv("SERVEGEN_TEMPLATE_DIR")
    reference = render({}, tmp_path / "from-checkout")
    leftovers = [
        p for p in ours.rglob("*") if p.name == "__pycache__" or p.suffix in (".pyc", ".pyo")
    ]
    assert leftovers == []
    assert tree(ours) == tree(reference)
    assert (project_folder / "stray.pyo").is_file()  # the template itself is left alone


def test_plain_cookiecutter_hook_refuses_bad_answers(tmp_path: Path) -> None:
    with private_home() as env:
        out = subprocess.run(
            [*COOKIECUTTER, "--no-input", "-o", str(tmp_path), str(TEMPLATE_DIR), "api_port=80"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
        )
    assert out.returncode != 0
    assert "error: api_port: must be between 1024 and 65535, got 80" in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_plain_cookiecutter_from_a_relative_template_path(tmp_path: Path) -> None:
    # _repo_dir is then relative; the hooks must still find the template's rules.
    relative = Path("templates") / "torch-fastapi"
    with private_home() as env:
        out = subprocess.run(
            [*COOKIECUTTER, "--no-input", "-o", str(tmp_path), str(relative)],
            capture_output=True,
            text=True,
            cwd=TEMPLATE_DIR.parent.parent,
            env=env,
        )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "model-service" / ".servegen-answers.yml").is_file()


def test_template_found_in_checkout_and_overridable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert find_template() == TEMPLATE_DIR.resolve()
    monkeypatch.setenv("SERVEGEN_TEMPLATE_DIR", str(tmp_path))
    result = servegen("options")
    assert result.exit_code == 1
    assert "template 'torch-fastapi' not found" in result.stderr


def test_options_match_cookiecutter_json() -> None:
    template = load_template()
    spec = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())
    names = [k for k in spec if not k.startswith("_")]
    assert list(template.keys) == names == list(template.rules.RULES)
    assert set(spec["__prompts__"]) == set(names)
    for key in names:
        assert template.rule(key).help
        # A rule's choices are cookiecutter.json's list (the prompt's), nothing else.
        assert template.rule(key).choices == (spec[key] if isinstance(spec[key], list) else [])
    # Read once: every caller shares the one table.
    assert template.rules.load_compat() is template.rules.load_compat()


def test_a_hook_refusal_is_one_line_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The post-generation hook refuses a supplied database password that is too short.
    monkeypatch.setenv("SERVEGEN_DB_PASSWORD", "short")
    result = servegen("new", "svc", "--no-input", cwd=tmp_path)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: SERVEGEN_DB_PASSWORD")
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_older_template_version_is_noted(tmp_path: Path) -> None:
    first = render({}, tmp_path / "first")
    recorded = first / ".servegen-answers.yml"
    text = recorded.read_text().replace(
        f'_template_version: "{load_template().version}"', '_template_version: "0.0.1"'
    )
    recorded.write_text(text)
    result = servegen("new", "second", "--no-input", "--answers", str(recorded), cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert "recorded with template version 0.0.1" in result.stderr


def test_plain_cookiecutter_with_directory_option(tmp_path: Path) -> None:
    # `cookiecutter <repo> --directory templates/torch-fastapi`, with the repository given
    # as a local folder (a git URL is cloned to the same layout first).
    with private_home() as env:
        out = subprocess.run(
            [
                *COOKIECUTTER,
                "--no-input",
                "-o",
                str(tmp_path),
                str(TEMPLATE_DIR.parent.parent),
                "--directory",
                "templates/torch-fastapi",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
        )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "model-service" / "secrets" / "db_password.txt").is_file()


def test_the_template_never_imports_servegen() -> None:
    # Plain cookiecutter must work where servegen is not installed.
    for path in [*TEMPLATE_DIR.glob("*.py"), *TEMPLATE_DIR.glob("hooks/*.py")]:
        text = path.read_text(encoding="utf-8")
        assert "import generator" not in text and "from generator" not in text, path


def test_the_readme_keeps_plain_punctuation_readable(tmp_path: Path) -> None:
    # Only what Markdown would read as syntax is escaped: the raw file reads as typed.
    answers = {"project_name": "Fraud Scorer!", "description": "Scores risk with FastAPI. 100%"}
    project = render(answers, tmp_path / "p")
    lines = (project / "README.md").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# Fraud Scorer!"
    assert lines[2] == "Scores risk with FastAPI. 100%"


def _servegen_process(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "generator", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


def test_no_rendered_hook_script_is_left_in_the_temporary_folder(tmp_path: Path) -> None:
    # cookiecutter writes each rendered hook (answers and all) to the temporary folder
    # and never removes it: servegen renders them in its staging folder, and the hooks
    # remove their own copy when plain cookiecutter runs them.
    temp = tmp_path / "tmp"
    temp.mkdir()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with private_home() as env:
        env["TMPDIR"] = str(temp)
        done = _servegen_process("new", str(out_dir / "a"), "--no-input", env=env)
        assert done.returncode == 0, done.stderr
        refused = _servegen_process(
            "new", str(out_dir / "b"), "--no-input", "--set", "db_name=mysql", env=env
        )
        assert refused.returncode == 2, refused.stderr
        for extra in ([], ["db_name=mysql"]):  # a render, and one the pre-gen hook refuses
            command = [*COOKIECUTTER, "--no-input", "-o", str(out_dir), str(TEMPLATE_DIR)]
            subprocess.run([*command, *extra], capture_output=True, env=env, check=False)
    assert (out_dir / "a" / "README.md").is_file()
    assert (out_dir / "model-service" / "README.md").is_file()
    assert sorted(p.name for p in temp.iterdir()) == []
