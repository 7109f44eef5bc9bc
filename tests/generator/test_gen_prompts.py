"""The prompt session, called directly: what is asked, skipped, narrowed and refused."""

from __future__ import annotations

import io
import json
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from gen_helpers import TEMPLATE_DIR

from generator import render as render_module
from generator.errors import Declined, Interrupted, RenderError, UsageError
from generator.next_steps import next_steps, shell_path
from generator.options import OptionsBuilder
from generator.prompts import Style, Terminal, ask, colour_wanted, confirm
from generator.template import load_template


class Script:
    """A terminal that types the given lines and records the prompts it was shown."""

    def __init__(self, *lines: str, interactive: bool = False, colour: bool = False) -> None:
        self.lines = list(lines)
        self.prompts: list[str] = []
        self.out = io.StringIO()
        self.err = io.StringIO()
        self.terminal = Terminal(
            read=self.read,
            out=self.out,
            err=self.err,
            interactive=interactive,
            style=Style(colour),
            prompt_style=Style(colour, readline=interactive),
            err_style=Style(colour),
        )

    def read(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if not self.lines:
            raise EOFError
        line = self.lines.pop(0)
        if line == "^C":
            raise KeyboardInterrupt
        return line


def test_irrelevant_questions_are_skipped_and_keep_their_default() -> None:
    builder = OptionsBuilder(load_template())
    builder.set("batching", "no", "--set")
    script = Script(*[""] * 13)
    assert ask(builder, script.terminal) == 13
    asked = [prompt.split("] ", 1)[1].split(" [")[0] for prompt in script.prompts]
    assert not any("batch" in text.lower() for text in asked), asked
    assert script.prompts[0].startswith("[1/13] ")
    options = builder.build()
    assert (options["batch_max_size"], options["batch_max_wait_ms"]) == ("32", "5")


def test_progress_follows_the_answers() -> None:
    builder = OptionsBuilder(load_template())
    script = Script(*[""] * 12, "no", "")
    ask(builder, script.terminal)
    assert script.prompts[12].startswith("[13/16] Enable dynamic micro-batching?")
    # No batching: its size and wait are not asked, and the count follows.
    assert script.prompts[13].startswith("[14/14] Also render Kubernetes manifests")
    assert len(script.prompts) == 14


def test_choices_are_picked_by_number_or_by_value_in_any_case() -> None:
    builder = OptionsBuilder(load_template())
    builder.set("project_name", "Picks", "--set")
    script = Script("", "", "", "", "2", "1", "CUDA", "Image-Classification", "3", *[""] * 6)
    ask(builder, script.terminal)
    options = builder.build()
    assert options["python_version"] == "3.12"
    assert options["torch_version"] == "2.13.0"
    assert options["accelerator"] == "cuda"
    assert options["task"] == "image-classification"
    assert options["model_format"] == "export"


def test_help_on_request_names_what_narrowed_the_choices() -> None:
    builder = OptionsBuilder(load_template())
    builder.set("python_version", "3.13", "--set")
    script = Script("", "", "", "", "", "?", *[""] * 20)
    ask(builder, script.terminal)
    help_text = script.out.getvalue()
    assert "PyTorch release; must support the chosen Python." in help_text
    assert "Not offered: 2.5.1 (torch 2.5.1 has no wheels for Python 3.13" in help_text
    assert "Option name: torch_version (servegen new --set torch_version=...)." in help_text
    assert script.prompts[5] == script.prompts[6]  # the same question again


def _template_copy(tmp_path: Path, spec_change: dict[str, object], compat_change=None) -> Path:
    copy = tmp_path / "template"
    copy.mkdir()
    for name in ("servegen_rules.py", "servegen_ext.py", "torch_compat.json"):
        shutil.copy2(TEMPLATE_DIR / name, copy / name)
    spec = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8"))
    spec.update(spec_change)
    (copy / "cookiecutter.json").write_text(json.dumps(spec), encoding="utf-8")
    if compat_change is not None:
        compat = json.loads((TEMPLATE_DIR / "torch_compat.json").read_text(encoding="utf-8"))
        compat_change(compat["versions"])
        (copy / "torch_compat.json").write_text(json.dumps(compat), encoding="utf-8")
    return copy


@pytest.fixture
def restore_rules() -> Iterator[None]:
    # A template copy loads its own servegen_rules module; the next test reloads ours.
    yield
    load_template()


@pytest.mark.usefixtures("restore_rules")
def test_a_single_choice_is_never_asked(tmp_path: Path) -> None:
    def only_2_9_1_for_3_13(versions: dict[str, dict[str, object]]) -> None:
        versions["2.13.0"]["python"] = ["3.11", "3.12"]

    template = load_template(
        _template_copy(tmp_path, {"model_format": ["state_dict"]}, only_2_9_1_for_3_13)
    )
    builder = OptionsBuilder(template)
    builder.set("python_version", "3.13", "--set")
    script = Script(*[""] * 20)
    ask(builder, script.terminal)
    asked = "".join(script.prompts)
    assert "How the model file is saved" not in asked
    assert "PyTorch version" not in asked  # only 2.9.1 has wheels for 3.13 here
    out = script.out.getvalue()
    assert "How the model file is saved: state_dict (the only choice)" in out
    assert "PyTorch version: 2.9.1 (the only choice)" in out
    options = builder.build()
    assert (options["model_format"], options["torch_version"]) == ("state_dict", "2.9.1")


def test_ctrl_c_and_ctrl_d_have_their_own_messages() -> None:
    builder = OptionsBuilder(load_template())
    with pytest.raises(Interrupted) as interrupted:
        ask(builder, Script("Name", "^C", interactive=True).terminal)
    assert interrupted.value.exit_code == 128 + signal.SIGINT
    assert interrupted.value.user_message() == (
        "interrupted (Ctrl-C) at 'project_slug'; nothing was written"
    )
    with pytest.raises(UsageError) as ended:
        ask(OptionsBuilder(load_template()), Script("Name", interactive=True).terminal)
    assert ended.value.exit_code == 2
    assert ended.value.user_message() == (
        "input ended (Ctrl-D) before 'project_slug' was answered; nothing was written"
    )
    with pytest.raises(UsageError) as piped:
        ask(OptionsBuilder(load_template()), Script("Name").terminal)
    assert piped.value.user_message() == (
        "input ended before 'project_slug' was answered (pass --no-input to take the defaults)"
    )


def test_the_summary_comes_before_the_confirmation(tmp_path: Path) -> None:
    builder = OptionsBuilder(load_template())
    builder.set("batching", "no", "--set")
    options = builder.build()
    script = Script("no")
    with pytest.raises(Declined) as declined:
        confirm(builder, options, tmp_path / "svc", "new", script.terminal)
    assert declined.value.exit_code == 7
    out = script.out.getvalue()
    assert "  project_name       Model Service\n" in out
    assert "  batching           no\n" in out
    assert "  batch_max_size     32  (not asked: used only when batching is yes)\n" in out
    assert script.prompts == [f"Create {tmp_path / 'svc'}? [Y/n]: "]
    confirm(builder, options, tmp_path / "svc", "new", Script("").terminal)  # Enter: yes


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert colour_wanted(Tty(), {})
    assert colour_wanted(Tty(), {"NO_COLOR": ""})  # present but empty: no-color.org
    assert not colour_wanted(Tty(), {"NO_COLOR": "1"})
    assert not colour_wanted(Tty(), {"TERM": "dumb"})
    assert not colour_wanted(io.StringIO(), {})
    assert Style(False)("x", "bold") == "x"
    assert Style(True)("x", "bold") == "\x1b[1mx\x1b[0m"
    # In a readline prompt, escape sequences are marked as taking no room on the line.
    assert Style(True, readline=True)("x", "red") == "\x01\x1b[31m\x02x\x01\x1b[0m\x02"


def test_a_coloured_session_marks_its_prompt_for_readline() -> None:
    builder = OptionsBuilder(load_template())
    script = Script("^C", interactive=True, colour=True)
    with pytest.raises(Interrupted):
        ask(builder, script.terminal)
    assert script.prompts[0].startswith("\x01\x1b[2m\x02[1/16]\x01\x1b[0m\x02 ")


@pytest.mark.parametrize(
    ("project", "expected"),
    [
        ("svc", "svc"),
        ("a b/svc", "'a b/svc'"),
        ("it's $HOME", "'it'\"'\"'s $HOME'"),
        ("-x", "./-x"),
        (".", "."),
    ],
)
def test_paths_in_the_next_steps_are_safe_for_a_shell(
    tmp_path: Path, project: str, expected: str
) -> None:
    assert shell_path(tmp_path / project, tmp_path) == expected


def test_next_steps_use_an_absolute_path_outside_the_current_folder(tmp_path: Path) -> None:
    lines = next_steps(tmp_path / "svc", python="3.11", port="8000", cwd=tmp_path / "elsewhere")
    assert f"    cd {tmp_path / 'svc'}" in lines
    assert f"    servegen test {tmp_path / 'svc'}" in lines


def test_a_failed_render_into_an_empty_folder_leaves_it_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "svc"
    folder.mkdir()
    options = OptionsBuilder(load_template()).build()
    real_rename = render_module.os.rename
    moved: list[str] = []

    def rename_then_fail(src: object, dst: object) -> None:
        if Path(str(dst)).parent == folder:
            if len(moved) == 3:
                raise OSError(28, "No space left on device")
            moved.append(str(dst))
        real_rename(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(render_module.os, "rename", rename_then_fail)
    with pytest.raises(RenderError, match="No space left on device"):
        render_module.render(options, folder)
    assert len(moved) == 3
    assert list(folder.iterdir()) == []


@pytest.mark.usefixtures("restore_rules")
def test_a_question_may_only_depend_on_earlier_answers(tmp_path: Path) -> None:
    copy = _template_copy(tmp_path, {})
    rules = copy / "servegen_rules.py"
    text = rules.read_text(encoding="utf-8")
    marker = '        "Human-readable name; the slug and package are derived from it.",\n'
    assert marker in text
    text = text.replace(
        marker + "        check_project_name,\n",
        marker + '        check_project_name,\n        asked_when=(("batching", True),),\n',
    )
    rules.write_text(text, encoding="utf-8")
    with pytest.raises(
        RenderError, match=r"RULES\['project_name'\]\.asked_when names \['batching'\]"
    ):
        load_template(copy)
