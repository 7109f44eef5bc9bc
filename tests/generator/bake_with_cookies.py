"""Bake the template with pytest-cookies's ``cookies`` fixture, as a template's own tests do.

The main test run does not collect this module (its name does not start with
``test_``): ``test_gen_ecosystem.py`` runs it in a pytest process of its own, so that
nothing the main run has imported (the template's extension, servegen) can make a bake
pass. By hand, from the repository root::

    python -m pytest tests/generator/bake_with_cookies.py --template templates/torch-fastapi

Every combination of the options named in ``VARIED`` is baked, their values read from
the template's ``cookiecutter.json``. When ``BAKE_RECORDS`` names a folder, each bake's
outcome goes there as one JSON file, for the caller to compare with ``servegen new``
(keep the projects with ``--keep-baked-projects``).
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest

#: Options multiplied: each combination is baked once.
VARIED = ("task", "model_format")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``variant`` with every combination of the ``VARIED`` options."""
    if "variant" not in metafunc.fixturenames:
        return
    spec_file = Path(metafunc.config.option.template) / "cookiecutter.json"
    spec = json.loads(spec_file.read_text(encoding="utf-8"))
    variants = [
        dict(zip(VARIED, values, strict=True))
        for values in itertools.product(*(spec[key] for key in VARIED))
    ]
    metafunc.parametrize("variant", variants, ids=["-".join(v.values()) for v in variants])


def _record(variant: dict[str, str], result: Any) -> None:
    folder = os.environ.get("BAKE_RECORDS")
    if not folder:
        return
    record = {
        "variant": variant,
        "exit_code": result.exit_code,
        "exception": None if result.exception is None else repr(result.exception),
        "project": None if result.exception is not None else str(result.project_path),
        "context": None if result.context is None else dict(result.context),
    }
    name = "-".join(variant.values()) + ".json"
    (Path(folder) / name).write_text(json.dumps(record, default=str), encoding="utf-8")


def test_bake(cookies: Any, variant: dict[str, str]) -> None:
    result = cookies.bake(extra_context=variant)
    _record(variant, result)
    assert result.exception is None, repr(result.exception)
    assert result.exit_code == 0
    assert result.project_path.is_dir()
    # The context pytest-cookies built holds the answers given and the derived ones.
    assert {key: result.context[key] for key in variant} == variant
    assert result.project_path.name == result.context["project_slug"]
