"""The wheel carries the template: install it in a fresh venv and render from elsewhere.

The wheel is built and installed once for the module; pip compiles what it installs
(the template's ``.py`` files too), and projects rendered from there must still hold
no bytecode and equal what plain cookiecutter renders.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from gen_helpers import REPO_ROOT, TEMPLATE_DIR, render_cookiecutter, set_args, tree


def run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, f"{args}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def tracked_template_files() -> list[str]:
    """Template files under version control (what a wheel built from git holds)."""
    out = run("git", "ls-files", "-z", "--", "templates/torch-fastapi", cwd=REPO_ROOT)
    prefix = "templates/torch-fastapi/"
    return sorted(p[len(prefix) :] for p in out.split("\0") if p)


@dataclass(frozen=True)
class Installed:
    """servegen installed from its own wheel into a fresh venv."""

    wheel: Path
    venv: Path
    site: Path
    env: dict[str, str]

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def servegen(self) -> Path:
        return self.venv / "bin" / "servegen"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Build servegen's wheel (no build isolation, no index) and install it in a venv.

    pip compiles the bytecode of what it installs (its default; ``--compile`` says so
    explicitly), the template's ``.py`` files included, as a user's pip would.
    """
    tmp = tmp_path_factory.mktemp("wheel")
    wheels = tmp / "wheels"
    run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
        "-w", wheels, REPO_ROOT,
    )  # fmt: skip
    (wheel,) = wheels.glob("servegen-*.whl")

    # A fresh venv; the runtime dependencies come from this interpreter's site-packages
    # through a .pth file (no index needed), servegen itself only from the wheel.
    venv = tmp / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    venv_python = venv / "bin" / "python"
    venv_site = Path(
        run(venv_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    )
    here = [p for p in {sysconfig.get_paths()["purelib"], *site.getsitepackages()} if p]
    (venv_site / "_host_deps.pth").write_text("\n".join(here) + "\n")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PIP_NO_COMPILE", "PYTHONDONTWRITEBYTECODE")
    }
    # --ignore-installed: an editable servegen of the test environment is visible through
    # the .pth too, and must not count as "already satisfied".
    run(
        venv_python, "-m", "pip", "install", "--no-index", "--find-links", wheels,
        "--ignore-installed", "--no-deps", "--compile", "servegen", env=env,
    )  # fmt: skip
    return Installed(wheel=wheel, venv=venv, site=venv_site, env=env)


@pytest.mark.slow
def test_wheel_installs_and_renders_outside_the_checkout(
    installed: Installed, tmp_path: Path
) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    assert not [n for n in names if n.startswith("templates/")], "generic top-level folder"
    in_wheel = sorted(
        n.removeprefix("generator/templates/torch-fastapi/")
        for n in names
        if n.startswith("generator/templates/torch-fastapi/")
    )
    assert "cookiecutter.json" in in_wheel
    assert set(tracked_template_files()) <= set(in_wheel)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    located = run(
        installed.python, "-c",
        "import generator.template as t; print(t.find_template()); import generator; "
        "print(generator.__file__); print(generator.__version__)",
        cwd=elsewhere, env=installed.env,
    ).split("\n")  # fmt: skip
    assert located[0].startswith(str(installed.site)), located
    assert located[1].startswith(str(installed.site)), located
    assert located[2] != "0+unknown"

    run(
        installed.servegen, "new", "--no-input", "--set", "project_name=Wheel Svc",
        cwd=elsewhere, env=installed.env,
    )  # fmt: skip
    project = elsewhere / "wheel-svc"
    assert (project / ".servegen-answers.yml").is_file()
    assert (project / "secrets" / "db_password.txt").is_file()  # hooks ran
    assert sorted(p.name for p in elsewhere.iterdir()) == ["wheel-svc"]
    assert TEMPLATE_DIR.is_dir()


def _bytecode(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.name == "__pycache__" or p.suffix in (".pyc", ".pyo")
    )


@pytest.mark.slow
def test_an_installed_servegen_renders_no_bytecode(installed: Installed, tmp_path: Path) -> None:
    # pip compiled the installed template, its project folder included ...
    template = installed.site / "generator" / "templates" / "torch-fastapi"
    compiled = _bytecode(template)
    project_folder = "{{cookiecutter.project_slug}}/"
    assert [p for p in compiled if p.startswith(project_folder) and p.endswith(".pyc")], compiled
    # ... yet the project it renders holds no bytecode, and equals plain cookiecutter's
    # render of the repository's template (apart from the random secrets).
    answers = {"project_name": "Wheel Svc", "python_version": "3.12", "batching": False}
    ours_dir = tmp_path / "servegen"
    ours_dir.mkdir()
    run(
        installed.servegen, "new", "--no-input", *set_args(answers), cwd=ours_dir, env=installed.env
    )
    ours = ours_dir / "wheel-svc"
    assert _bytecode(ours) == []
    (tmp_path / "cookiecutter").mkdir()
    theirs = render_cookiecutter(answers, tmp_path / "cookiecutter")
    a, b = tree(ours), tree(theirs)
    assert sorted(a) == sorted(b), sorted(set(a) ^ set(b))
    assert [name for name in a if a[name] != b[name]] == []
