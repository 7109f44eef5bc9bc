"""Reject bad answers before any file is written.

cookiecutter renders this script with Jinja and runs it in the new project folder;
exiting non-zero makes cookiecutter delete that folder. The answers arrive as one JSON
document inside a Python string literal, so no answer can change this code. The
template folder comes from the template's Jinja extension: ``_repo_dir`` may be a path
relative to a working directory this script does not run in.
"""

import json
import sys
import tempfile
from pathlib import Path

ANSWERS = json.loads({{ cookiecutter | json_str | py_str }})
TEMPLATE_DIR = Path({{ servegen_template_dir | py_str }})


def forget_rendered_copy() -> None:
    """Remove this script when it is cookiecutter's rendered copy in the temporary folder.

    cookiecutter renders a hook into a temporary file, runs it, and leaves the file
    behind, answers and all; one stray file per render adds up. The template's own
    ``hooks/`` file is never removed.
    """
    here = Path(__file__).resolve()
    if here.parent == Path(tempfile.gettempdir()).resolve() and here.name.startswith("tmp"):
        here.unlink(missing_ok=True)


def main() -> int:
    """Validate the answers with the template's own rules; 0 when they pass."""
    forget_rendered_copy()
    sys.path.insert(0, str(TEMPLATE_DIR))
    import servegen_rules

    try:
        servegen_rules.validate(ANSWERS)
    except servegen_rules.RuleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
