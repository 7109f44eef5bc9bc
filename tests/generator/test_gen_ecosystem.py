"""The cookiecutter ecosystem: pytest-cookies and cruft bake what ``servegen new`` renders.

pytest-cookies: ``bake_with_cookies.py`` bakes every task x model format with the
``cookies`` fixture in a pytest process of its own (under this repository's pytest
settings: strict markers, warnings as errors, ``pythonpath``). In this process the
template's extension is imported already (other test modules and servegen itself import
it), which would let a bake pass that fails for a user; a fresh process cannot.

cruft: a local git repository holds a copy of the template under
``templates/torch-fastapi``, as this repository does, so ``--directory`` is exercised;
then ``cruft create``, ``check``, ``diff`` and ``update`` (a changed answer, a new
commit of the template) run for real. Offline: local paths only.

Each project is compared with ``servegen new``'s for the same answers: the same files,
bytes and modes, apart from the random passwords in ``secrets/`` and the tool's own
files (``.cruft.json``, the project's ``.git``).
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from gen_helpers import RANDOM_DIRS, REPO_ROOT, TEMPLATE_DIR, private_home, render, tree

BAKE_MODULE = Path(__file__).with_name("bake_with_cookies.py")
#: cruft's record of the template, the commit and the answers, in the project.
CRUFT_FILE = ".cruft.json"
#: What a project made by cruft holds that servegen's does not: random passwords, cruft's
#: record, and the git repository the test makes of the project.
CRUFT_EXTRAS = (*RANDOM_DIRS, CRUFT_FILE, ".git")
#: Where the copy of the template lives in the template repository (as in this one).
TEMPLATE_SUBDIR = "templates/torch-fastapi"


def assert_same_project(ours: Path, theirs: Path, *, skip: tuple[str, ...] = RANDOM_DIRS) -> None:
    """Assert two projects hold the same files, bytes and modes (``skip``: top-level names)."""
    a, b = tree(ours, skip=skip), tree(theirs, skip=skip)
    assert sorted(a) == sorted(b), f"only in one of them: {sorted(set(a) ^ set(b))}"
    assert [name for name in a if a[name] != b[name]] == [], "files differ"
    for name in a:
        assert (ours / name).stat().st_mode == (theirs / name).stat().st_mode, name


def _plain(value: Any) -> Any:
    """An answer as cookiecutter holds it: text, except yes/no answers."""
    return value if isinstance(value, bool) else str(value)


# ----------------------------------------------------------------- pytest-cookies


def test_pytest_cookies_bakes_every_variant_as_servegen_does(tmp_path: Path) -> None:
    records = tmp_path / "records"
    records.mkdir()
    command = [
        sys.executable, "-m", "pytest", str(BAKE_MODULE.relative_to(REPO_ROOT)),
        "--template", TEMPLATE_SUBDIR, "--keep-baked-projects",
        "--basetemp", str(tmp_path / "basetemp"),
        # servegen's own fixtures stay out; a template's tests do not have them.
        "--noconftest", "-p", "no:cacheprovider", "-q",
    ]  # fmt: skip
    with private_home() as env:
        env["BAKE_RECORDS"] = str(records)
        env.pop("PYTEST_ADDOPTS", None)
        out = subprocess.run(
            command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False
        )
    assert out.returncode == 0, f"{out.stdout[-6000:]}\n{out.stderr[-2000:]}"

    baked = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(records.glob("*.json"))]
    spec = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8"))
    expected = sorted(itertools.product(spec["task"], spec["model_format"]))
    assert sorted((r["variant"]["task"], r["variant"]["model_format"]) for r in baked) == expected
    options = [key for key in spec if not key.startswith("_")]
    for record in baked:
        ident = "-".join(record["variant"].values())
        assert (record["exit_code"], record["exception"]) == (0, None), ident
        ours = render(record["variant"], tmp_path / "servegen" / ident)
        assert_same_project(ours, Path(record["project"]))
        # The context pytest-cookies hands the test holds the answers servegen recorded.
        recorded = yaml.safe_load((ours / ".servegen-answers.yml").read_text(encoding="utf-8"))
        context = record["context"]
        assert {k: _plain(context[k]) for k in options} == {
            k: _plain(recorded[k]) for k in options
        }, ident


# -------------------------------------------------------------------------- cruft


@pytest.fixture
def tool_env() -> Iterator[dict[str, str]]:
    """An environment with a private home (no user config) and a git identity."""
    with private_home() as env:
        for role in ("AUTHOR", "COMMITTER"):
            env[f"GIT_{role}_NAME"] = "servegen tests"
            env[f"GIT_{role}_EMAIL"] = "tests@servegen.invalid"
        yield env


def git(cwd: Path, env: dict[str, str], *args: str) -> str:
    """Run git in ``cwd``; fail the test when it fails."""
    out = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, f"git {' '.join(args)}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def cruft(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run cruft's command line (a separate process, as a user runs it)."""
    return subprocess.run(
        [sys.executable, "-m", "cruft", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def ok(out: subprocess.CompletedProcess[str]) -> str:
    """Assert a cruft run succeeded; return its output."""
    assert out.returncode == 0, f"{out.args}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.fixture
def template_repo(tmp_path: Path, tool_env: dict[str, str]) -> Path:
    """A local git repository holding this checkout's template (no bytecode)."""
    repo = tmp_path / "template-repo"
    shutil.copytree(
        TEMPLATE_DIR,
        repo / TEMPLATE_SUBDIR,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"),
    )
    git(repo, tool_env, "init", "--quiet")
    git(repo, tool_env, "add", "--all")
    git(repo, tool_env, "commit", "--quiet", "--message", "template")
    return repo


def cruft_create(repo: Path, answers: dict[str, Any], out_dir: Path, env: dict[str, str]) -> Path:
    """Create a project with cruft and commit it to git (its .gitignore keeps secrets out).

    ``--skip secrets``, as docs/architecture.md advises: cruft renders the template twice
    for an update and diffs the renders; each render writes new random passwords, so
    without it every update leaves ``secrets/*.rej`` files (the passwords are kept).
    """
    out_dir.mkdir()
    ok(
        cruft(
            out_dir, env,
            "create", str(repo), "--directory", TEMPLATE_SUBDIR, "--no-input",
            "--skip", "secrets", "--output-dir", str(out_dir),
            "--extra-context", json.dumps(answers),
        )
    )  # fmt: skip
    (project,) = [p for p in out_dir.iterdir() if p.is_dir()]
    git(project, env, "init", "--quiet")
    git(project, env, "add", "--all")
    git(project, env, "commit", "--quiet", "--message", "created by cruft")
    return project


def _passwords(project: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((project / "secrets").glob("*.txt"))}


def test_cruft_creates_checks_and_updates_an_answer(
    tmp_path: Path, template_repo: Path, tool_env: dict[str, str]
) -> None:
    answers = {
        "project_name": "Crufted Service",
        "task": "image-classification",
        "model_format": "export",
    }
    project = cruft_create(template_repo, answers, tmp_path / "projects", tool_env)
    assert project.name == "crufted-service"
    assert_same_project(
        render(answers, tmp_path / "servegen" / "first"), project, skip=CRUFT_EXTRAS
    )
    assert sorted(_passwords(project)) == ["db_password.txt", "db_root_password.txt"]
    # The project is what the template renders now: up to date, nothing to show.
    assert "up to date" in ok(cruft(project, tool_env, "check"))
    ok(cruft(project, tool_env, "diff", "--exit-code"))

    passwords = _passwords(project)
    changed = {"api_port": "9100"}
    ok(
        cruft(
            project, tool_env, "update", "--skip-apply-ask",
            "--variables-to-update", json.dumps(changed),
        )
    )  # fmt: skip
    assert sorted(p.name for p in project.rglob("*.rej")) == []
    assert_same_project(
        render({**answers, **changed}, tmp_path / "servegen" / "updated"),
        project,
        skip=CRUFT_EXTRAS,
    )
    # The database passwords (and so a database volume made with them) survive.
    assert _passwords(project) == passwords
    recorded = json.loads((project / CRUFT_FILE).read_text(encoding="utf-8"))
    assert recorded["context"]["cookiecutter"]["api_port"] == "9100"


def test_cruft_update_follows_a_new_commit_of_the_template(
    tmp_path: Path, template_repo: Path, tool_env: dict[str, str]
) -> None:
    project = cruft_create(template_repo, {}, tmp_path / "projects", tool_env)
    ok(cruft(project, tool_env, "check"))

    # The template moves on: a release bumps its version.
    spec_file = template_repo / TEMPLATE_SUBDIR / "cookiecutter.json"
    spec = json.loads(spec_file.read_text(encoding="utf-8"))
    spec["_template_version"] = "99.0.0"
    spec_file.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    git(template_repo, tool_env, "commit", "--quiet", "--all", "--message", "release 99.0.0")

    stale = cruft(project, tool_env, "check")
    assert stale.returncode == 1, f"{stale.stdout}\n{stale.stderr}"
    assert "out of date" in stale.stdout
    passwords = _passwords(project)
    ok(cruft(project, tool_env, "update", "--skip-apply-ask"))
    assert sorted(p.name for p in project.rglob("*.rej")) == []
    answers_file = yaml.safe_load((project / ".servegen-answers.yml").read_text(encoding="utf-8"))
    assert answers_file["_template_version"] == "99.0.0"
    assert _passwords(project) == passwords
    git(project, tool_env, "commit", "--quiet", "--all", "--message", "cruft update")
    assert "up to date" in ok(cruft(project, tool_env, "check"))
