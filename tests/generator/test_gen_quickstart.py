"""docs/quickstart.md, run as written: its ``servegen new`` commands and its error examples.

Each shell line of the quick start's ``bash`` blocks that runs ``servegen new`` runs here,
in a scratch folder, through bash with the installed ``servegen`` on PATH, as a reader
would paste it; each ``$ servegen ...`` example of its ``console`` blocks must print
exactly the ``error:`` line the page shows. ``servegen test`` is run for real by the
end-to-end tests, and the interactive session by the pseudo-terminal tests.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from gen_helpers import REPO_ROOT

QUICKSTART = REPO_ROOT / "docs" / "quickstart.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def _blocks(kind: str) -> list[str]:
    return [
        body for lang, body in BLOCK.findall(QUICKSTART.read_text(encoding="utf-8")) if lang == kind
    ]


def _shell(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run one line of the page in bash, with this interpreter's servegen first on PATH.

    A command that asks what its answers file leaves open gets Enter for each question
    (the defaults) and for the confirmation, as a reader accepting them would type.
    """
    servegen = shutil.which("servegen", path=str(Path(sys.executable).parent))
    assert servegen, "servegen is not installed beside this interpreter"
    env = {**os.environ, "PATH": f"{Path(servegen).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", "-c", line],
        cwd=cwd,
        env=env,
        input="\n" * 40,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _commands(block: str) -> list[str]:
    """The lines of a block, without the comments at their end."""
    lines = []
    for raw in block.splitlines():
        line = re.sub(r"\s+#\s.*$", "", raw).strip()
        if line:
            lines.append(line)
    return lines


def test_the_servegen_new_commands_run_as_written(tmp_path: Path) -> None:
    (yaml_block,) = _blocks("yaml")
    (tmp_path / "answers.yml").write_text(yaml_block, encoding="utf-8")
    # The interactive session of the page made ./fraud-scorer; without questions:
    made = _shell('servegen new --no-input --set project_name="Fraud Scorer"', tmp_path)
    assert made.returncode == 0, made.stderr
    ran = 0
    for block in _blocks("bash"):
        for line in _commands(block):
            if "servegen new" not in line:
                continue
            result = _shell(line, tmp_path)
            assert result.returncode == 0, f"{line}\n{result.stderr}"
            ran += 1
    assert ran >= 6
    for folder in ("model-service", "svc", "vision", "projects/fraud-scorer"):
        assert (tmp_path / folder / ".servegen-answers.yml").is_file(), folder
    answers = (tmp_path / "fraud-scorer" / ".servegen-answers.yml").read_text(encoding="utf-8")
    assert "api_port: 9000" in answers  # the page's last render changed it


def test_the_error_examples_print_what_the_page_shows(tmp_path: Path) -> None:
    checked = 0
    for block in _blocks("console"):
        lines = block.splitlines()
        for index, line in enumerate(lines):
            if not line.startswith("$ servegen new --no-input --set"):
                continue
            expected = lines[index + 1]
            assert expected.startswith("error: "), expected
            result = _shell(line.removeprefix("$ "), tmp_path)
            assert result.returncode == 2
            assert result.stderr.strip() == expected
            checked += 1
    assert checked >= 2
    assert list(tmp_path.iterdir()) == []
