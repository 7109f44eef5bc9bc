"""The wheel carries the template: install it in a fresh venv and render from elsewhere."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from gen_helpers import REPO_ROOT, TEMPLATE_DIR


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


@pytest.mark.slow
def test_wheel_installs_and_renders_outside_the_checkout(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
        "-w", wheels, REPO_ROOT,
    )  # fmt: skip
    (wheel,) = wheels.glob("servegen-*.whl")

    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.startswith("templates/")], "generic top-level folder"
    in_wheel = sorted(
        n.removeprefix("generator/templates/torch-fastapi/")
        for n in names
        if n.startswith("generator/templates/torch-fastapi/")
    )
    assert "cookiecutter.json" in in_wheel
    assert set(tracked_template_files()) <= set(in_wheel)

    # A fresh venv; the runtime dependencies come from this interpreter's site-packages
    # through a .pth file (no index needed), servegen itself only from the wheel.
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    venv_python = venv / "bin" / "python"
    venv_site = Path(
        run(venv_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    )
    here = [p for p in {sysconfig.get_paths()["purelib"], *site.getsitepackages()} if p]
    (venv_site / "_host_deps.pth").write_text("\n".join(here) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # --ignore-installed: an editable servegen of the test environment is visible through
    # the .pth too, and must not count as "already satisfied".
    run(
        venv_python, "-m", "pip", "install", "--no-index", "--find-links", wheels,
        "--ignore-installed", "--no-deps", "servegen", env=env,
    )  # fmt: skip

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    located = run(
        venv_python, "-c",
        "import generator.template as t; print(t.find_template()); import generator; "
        "print(generator.__file__); print(generator.__version__)",
        cwd=elsewhere, env=env,
    ).split("\n")  # fmt: skip
    assert located[0].startswith(str(venv_site)), located
    assert located[1].startswith(str(venv_site)), located
    assert located[2] != "0+unknown"

    servegen = venv / "bin" / "servegen"
    run(servegen, "new", "--no-input", "--set", "project_name=Wheel Svc", cwd=elsewhere, env=env)
    project = elsewhere / "wheel-svc"
    assert (project / ".servegen-answers.yml").is_file()
    assert (project / "secrets" / "db_password.txt").is_file()  # hooks ran
    assert sorted(p.name for p in elsewhere.iterdir()) == ["wheel-svc"]
    assert TEMPLATE_DIR.is_dir()
