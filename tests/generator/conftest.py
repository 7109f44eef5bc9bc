"""The option matrix of the template, built in ``pytest_generate_tests``.

The options that interact (Python x torch x accelerator x batching) are multiplied;
combinations the rules refuse (a Python version the torch release has no wheels for)
are dropped by asking the rules themselves; options that do not interact are cycled
through their values so each value is rendered at least once. Test ids read like
``py3.12-torch2.9.1-cuda-nobatch``.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from generator.template import load_template

#: Options multiplied together.
INTERACTING = ("python_version", "torch_version", "accelerator", "batching")

#: Options cycled through the matrix, with the values to cycle.
CYCLED: dict[str, list[Any]] = {
    "project_name": ["Model Service", "Fraud Scorer 2", "Ünïcode Näme Sérvice"],
    "api_port": ["8000", "9000", "18080", "65535"],
    "batch_max_size": ["32", "1", "4096"],
    "batch_max_wait_ms": ["5", "0", "1000"],
    "description": ['Scores "fraud" risk: {{ not jinja }} # not a comment', "Plain."],
}


def matrix() -> list[tuple[str, dict[str, Any]]]:
    """Return (id, answers) for every valid combination of the interacting options."""
    template = load_template()
    rules = template.rules
    values = [template.rule(key).choices or [True, False] for key in INTERACTING]
    combos = []
    for combo in itertools.product(*values):
        answers = dict(zip(INTERACTING, combo, strict=True))
        try:
            rules.check_combination(answers)
        except rules.RuleError:
            continue
        combos.append(answers)
    cycles = {key: itertools.cycle(vals) for key, vals in CYCLED.items()}
    out = []
    for answers in combos:
        for key, cycle in cycles.items():
            answers[key] = next(cycle)
        ident = "-".join(
            [
                f"py{answers['python_version']}",
                f"torch{answers['torch_version']}",
                answers["accelerator"],
                "batch" if answers["batching"] else "nobatch",
            ]
        )
        out.append((ident, answers))
    return out


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``matrix_answers`` with the option matrix."""
    if "matrix_answers" in metafunc.fixturenames:
        cases = matrix()
        metafunc.parametrize(
            "matrix_answers", [answers for _, answers in cases], ids=[i for i, _ in cases]
        )
