"""The ``servegen`` command line: parses, prompts, reports. Nothing else.

Every failure reaches :meth:`ServegenGroup.main`, and :func:`report_error` is the one
place that turns an exception into ``error: <message>`` on stderr and an exit code: a
servegen error carries its own code (:mod:`generator.errors`; 2 for bad usage or a bad
answer, 6 for a render into an existing project that kept files the user changed, 7
for a "no" at the confirmation, whose line starts with ``stopped:``), Typer's parsing
errors theirs, an interruption 130, anything else 1. No traceback is shown for an error
the user can fix; set ``SERVEGEN_DEBUG=1`` to see one for anything else. The questions
themselves live in :mod:`generator.prompts`.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from generator import __version__
from generator.errors import (
    ChangesKept,
    InternalError,
    Interrupted,
    ServegenError,
    UsageError,
)

#: A Ctrl-C at a prompt or while rendering ends the command as a shell reports SIGINT.
EXIT_INTERRUPTED = 128 + signal.SIGINT

#: The metavar of a flag: none. Typer 0.29's rich help would show ``<bool>`` for a flag,
#: as if it took a value; an empty metavar leaves the type column blank.
FLAG = ""


def report_error(exc: BaseException) -> int:
    """Print one ``error:`` line (``stopped:`` for a no) for an exception; return its code.

    An error that a report has shown already (``reported``) prints nothing more.
    """
    label = "error"
    if isinstance(exc, ServegenError | Interrupted):
        message = "" if exc.reported else exc.user_message()
        code, label = exc.exit_code, exc.label
    elif isinstance(exc, typer.TyperException):
        # Typer's own parsing errors (unknown flag, bad value, missing argument).
        message, code = exc.format_message(), exc.exit_code
        ctx = getattr(exc, "ctx", None)
        if ctx is not None and code == UsageError.exit_code and message:
            message += f" (see '{ctx.command_path} --help')"
    elif isinstance(exc, typer.Abort | KeyboardInterrupt):
        message, code = "interrupted", EXIT_INTERRUPTED
    else:
        if os.environ.get("SERVEGEN_DEBUG") == "1":
            traceback.print_exception(exc)
        message = f"internal error: {exc.__class__.__name__}: {exc} (SERVEGEN_DEBUG=1 shows more)"
        code = InternalError.exit_code
    message = " ".join(message.split())
    if message:  # empty for "no arguments: help shown"
        typer.echo(f"{label}: {message}", err=True)
    return code


def _flag_help_option(option: Any) -> Any:
    """Give the ``--help`` option the empty metavar of a flag (see :data:`FLAG`)."""
    if option is not None:
        option.metavar = FLAG
    return option


class ServegenCommand(TyperCommand):
    """Typer's command, with ``--help`` shown as the flag it is."""

    def get_help_option(self, ctx: Any) -> Any:
        """Return the help option, with no value shown in the help."""
        return _flag_help_option(super().get_help_option(ctx))


class ServegenGroup(TyperGroup):
    """Typer's command group with servegen's single error-to-exit-code mapping."""

    def get_help_option(self, ctx: Any) -> Any:
        """Return the help option, with no value shown in the help."""
        return _flag_help_option(super().get_help_option(ctx))

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the CLI; exceptions become one ``error:`` line and an exit code."""
        try:
            result = super().main(
                args,
                prog_name or "servegen",
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
            code = result if isinstance(result, int) else 0
        except Exception as exc:
            code = report_error(exc)
        except (KeyboardInterrupt, Interrupted) as exc:
            code = report_error(exc)
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    cls=ServegenGroup,
    name="servegen",
    help=(
        "Scaffold a PyTorch + FastAPI model-serving service, then prove it with a real"
        " Docker build and smoke run.\n\n"
        "[bold]servegen new[/bold] renders a project from your answers;"
        " [bold]servegen test DIR[/bold] builds it, starts its stack and probes it."
    ),
    rich_markup_mode="rich",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"servegen {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version_callback,
            is_eager=True,
            help="Print the servegen version and exit.",
            metavar=FLAG,
        ),
    ] = False,
) -> None:
    """Scaffold PyTorch + FastAPI model-serving services and prove them."""


# --------------------------------------------------------------------------------- new


@app.command(cls=ServegenCommand)
def new(
    dest: Annotated[
        Path | None,
        typer.Argument(
            help="Project directory to create (default: the slug, under --output-dir).",
            show_default=False,
        ),
    ] = None,
    no_input: Annotated[
        bool,
        typer.Option(
            "--no-input",
            help="Ask nothing: take defaults, the file and --set (a flag: takes no value).",
            metavar=FLAG,
        ),
    ] = False,
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            "-s",
            metavar="KEY=VALUE",
            help="Set one option (repeatable); see [bold]servegen options[/bold].",
            show_default=False,
        ),
    ] = None,
    answers: Annotated[
        Path | None,
        typer.Option(
            "--answers",
            "-a",
            metavar="FILE",
            help="Answers file, YAML or JSON (a project's .servegen-answers.yml works).",
            show_default=False,
        ),
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir",
            "-o",
            metavar="DIR",
            help="Folder to create the project in (default: the current folder).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            "-f",
            help=(
                "Render into an existing servegen project: replace only generated files"
                " you have not changed; touch nothing else (secrets/ kept)."
            ),
            metavar=FLAG,
        ),
    ] = False,
) -> None:
    """Render a new service project from answers, or render an existing one again.

    Values come from the defaults, then [bold]--answers[/bold], then [bold]--set[/bold],
    then the questions (skipped with [bold]--no-input[/bold]). After the questions,
    a summary is shown, and nothing is written until you confirm it. A new project
    appears only when everything succeeded; nothing is left behind on failure.
    DEST may be an empty folder ([bold]servegen new .[/bold] in a fresh folder).

    [bold]--no-input[/bold] and [bold]--force[/bold] are flags and take no value:
    a word after them is DEST ([bold]servegen new --no-input svc[/bold] renders svc).

    With [bold]--force[/bold] into an existing project, only the files the template
    generates are written: each one you have not changed since it was rendered is
    replaced; for each one you changed, the new version goes beside it as
    [bold]<name>.servegen-new[/bold]. Everything else (.git, .env, .venv, models/, your
    own files) is never touched, and the folder itself stays.

    Exit codes: 0 done, 2 bad usage or a bad answer, or the input ended (Ctrl-D)
    before the last answer (nothing written), 6 rendered into an existing project
    but files you changed were kept (listed on stderr), 7 you answered no at the
    confirmation (nothing written), 130 interrupted by Ctrl-C (nothing written),
    1 the render failed.
    """
    from generator.options import build_options
    from generator.render import check_destination, render
    from generator.template import load_template

    template = load_template()
    builder = build_options(template, answers_file=answers, sets=sets)
    base = output_dir if output_dir is not None else Path.cwd()
    terminal = None
    asked = 0
    if not no_input:
        from generator import prompts

        if dest is not None:
            check_destination(base / dest, force)  # refuse before the questions, not after
        terminal = prompts.Terminal.from_stdio()
        asked = prompts.ask(builder, terminal)
    options = builder.build()
    if builder.recorded_version not in (None, template.version):
        typer.echo(
            f"note: the answers were recorded with template version {builder.recorded_version};"
            f" rendering with {template.version}",
            err=True,
        )
    target = base / (dest if dest is not None else Path(options.slug))
    if terminal is not None and asked:
        # A person answered: show what will be written, and write only on yes.
        prompts.confirm(builder, options, target, check_destination(target, force), terminal)
    rendered = render(options, target, force=force)
    update = rendered.update
    if update is None:
        from generator.next_steps import next_steps

        typer.echo(f"Created {rendered.path}")
        steps = next_steps(
            rendered.path, python=str(options["python_version"]), port=str(options["api_port"])
        )
        for line in steps:
            typer.echo(line)
    else:
        for kept in update.kept:
            typer.echo(f"kept {kept.describe()}", err=True)
        typer.echo(f"Updated {rendered.path}: {update.summary()}")
        typer.echo(f"Next: servegen test {shlex.quote(str(rendered.path))}")
    if update is not None and update.kept:
        raise ChangesKept(update.kept_message())


# ----------------------------------------------------------------------------- options


@app.command("options", cls=ServegenCommand)
def options_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.", metavar=FLAG)] = False,
    as_markdown: Annotated[
        bool,
        typer.Option("--markdown", help="Print the Markdown of docs/options.md.", metavar=FLAG),
    ] = False,
) -> None:
    """List every option with its default, choices and help."""
    from generator import reference
    from generator.template import load_template

    if as_json and as_markdown:
        raise UsageError("choose one of --json and --markdown")
    template = load_template()
    if as_markdown:
        typer.echo(reference.markdown(template), nl=False)
        return
    infos = reference.describe(template)
    if as_json:
        data = {
            "template": template.name,
            "template_version": template.version,
            "options": [info.as_dict() for info in infos],
        }
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Options of template {template.name} {template.version}")
    table.add_column("option", style="bold")
    table.add_column("default")
    table.add_column("choices")
    table.add_column("help")
    for info in infos:
        default = info.default_plain()
        if info.derived_from:
            default += f"\n({info.derivation()})"
        table.add_row(info.name, default, ", ".join(info.choices) or "-", info.help)
    Console(soft_wrap=False).print(table)


# -------------------------------------------------------------------------------- test


@app.command("test", cls=ServegenCommand)
def test_cmd(
    project_dir: Annotated[
        Path,
        typer.Argument(
            help="A generated project directory.",
            exists=True,
            file_okay=False,
            dir_okay=True,
            show_default=False,
        ),
    ],
    base_image: Annotated[
        str | None,
        typer.Option(help="Build the app image FROM this image (build arg BASE_IMAGE)."),
    ] = None,
    db_image: Annotated[
        str | None, typer.Option(help="Run the database from this image (MYSQL_IMAGE).")
    ] = None,
    proxy_image: Annotated[
        str | None,
        typer.Option(help="Run the reverse proxy from this image (PROXY_IMAGE)."),
    ] = None,
    wheelhouse: Annotated[
        str | None,
        typer.Option(
            metavar="DIR|auto",
            help="Install wheels from this folder during the build ('auto' fills one).",
        ),
    ] = None,
    keep: Annotated[
        bool,
        typer.Option("--keep", help="Leave the stack running after the checks.", metavar=FLAG),
    ] = False,
    json_path: Annotated[
        Path | None,
        typer.Option("--json", metavar="FILE", help="Also write the report as JSON."),
    ] = None,
    ready_timeout: Annotated[
        float, typer.Option(min=1.0, help="Seconds to wait for the service to be ready.")
    ] = 180.0,
    docker_host: Annotated[
        str | None, typer.Option(help="Docker engine to use (default: DOCKER_HOST).")
    ] = None,
    drills: Annotated[
        bool,
        typer.Option(
            "--drills",
            help="After the checks, kill the database and the app and serve a corrupt "
            "model on purpose; the stack must cope (about half a minute more).",
        ),
    ] = False,
) -> None:
    """Build the project's image, start its stack, and smoke-test it over HTTP and SQL.

    Exit codes: 0 passed, 2 bad usage, 3 engine or tool missing, 4 build failed,
    5 a smoke check failed, 130/143 interrupted (SIGINT/SIGTERM; the stack is still
    torn down), 1 an internal error (its traceback goes to the JSON report).
    """
    from generator.harness.context import HarnessOptions
    from generator.harness.runner import run

    # The run prints its report; a failure comes back raised, marked as reported.
    run(
        HarnessOptions(
            project_dir=project_dir,
            base_image=base_image,
            db_image=db_image,
            proxy_image=proxy_image,
            wheelhouse=wheelhouse,
            keep=keep,
            json_path=json_path,
            ready_timeout=ready_timeout,
            docker_host=docker_host,
            drills=drills,
        )
    )


def main() -> None:
    """Entry point of the ``servegen`` console script."""
    app()
