"""The option matrix of the template, built in ``pytest_generate_tests``.

The options that shape the code together (task x model format x accelerator x
batching) are multiplied; the Python and torch versions go through the pairs the rules
accept (a torch release without wheels for a Python is dropped by asking the rules
themselves), one pair per combination in turn; options that do not interact are cycled
through their values, so each value is rendered at least once. Test ids read like
``image-classification-export-cuda-nobatch-py3.12-torch2.9.1``.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from generator.template import load_template

#: Options multiplied together.
INTERACTING = ("task", "model_format", "accelerator", "batching")

#: Options cycled through the matrix, with the values to cycle.
CYCLED: dict[str, list[Any]] = {
    # A package that sorts before the tests' conftest, and (last) a name as long as a
    # name may be (64): every generated line that holds the package name still passes
    # ruff's lint and format checks.
    "project_name": [
        "Model Service",
        "Ad Scorer 2",
        "Ünïcode Näme Sérvice",
        "Quite Long Project Name For A Fraud Scoring Service Of The Banks",
    ],
    "api_port": ["8000", "9000", "18080", "65535"],
    "batch_max_size": ["32", "1", "4096"],
    "batch_max_wait_ms": ["5", "0", "1000"],
    "description": ['Scores "fraud" risk: {{ not jinja }} # not a comment', "Plain."],
}


def _python_torch_pairs() -> list[dict[str, str]]:
    """Every (Python, torch) pair the rules accept."""
    template = load_template()
    rules = template.rules
    pairs = []
    for python, torch in itertools.product(
        template.rule("python_version").choices, template.rule("torch_version").choices
    ):
        answers = {"python_version": python, "torch_version": torch}
        try:
            rules.check_combination(answers)
        except rules.RuleError:
            continue
        pairs.append(answers)
    return pairs


def matrix() -> list[tuple[str, dict[str, Any]]]:
    """Return (id, answers) for every combination of the interacting options."""
    template = load_template()
    values = [template.rule(key).choices or [True, False] for key in INTERACTING]
    pairs = itertools.cycle(_python_torch_pairs())
    cycles = {key: itertools.cycle(vals) for key, vals in CYCLED.items()}
    out = []
    for combo in itertools.product(*values):
        answers = dict(zip(INTERACTING, combo, strict=True))
        answers.update(next(pairs))
        for key, cycle in cycles.items():
            answers[key] = next(cycle)
        ident = "-".join(
            [
                answers["task"],
                answers["model_format"],
                answers["accelerator"],
                "batch" if answers["batching"] else "nobatch",
                f"py{answers['python_version']}",
                f"torch{answers['torch_version']}",
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
