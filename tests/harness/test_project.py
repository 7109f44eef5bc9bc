"""Reading a generated project: answers, fallbacks, and one clear line for a bad folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.errors import UsageError
from generator.harness.project import load_project


def test_a_rendered_project_gives_the_harness_its_facts(project_dir: Path) -> None:
    project = load_project(project_dir)
    assert project.slug == "model-service"
    assert project.api_port == 8000
    assert project.db_name == "model_service"
    assert project.python_version == "3.11"
    assert project.default_base_image == "python:3.11-slim"
    assert project.missing_secrets() == []
    (project_dir / "secrets" / "db_password.txt").unlink()
    assert load_project(project_dir).missing_secrets() == ["db_password"]


def test_without_answers_the_folder_name_and_contract_defaults_apply(project_dir: Path) -> None:
    (project_dir / ".servegen-answers.yml").unlink()
    project = load_project(project_dir)
    assert (project.slug, project.api_port, project.db_name) == (
        "model-service",
        8000,
        "model_service",
    )


def test_a_folder_that_is_not_a_project_names_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services: {}\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"missing compose\.demo\.yaml, Dockerfile, requirements"):
        load_project(tmp_path)
    with pytest.raises(UsageError, match="is not a directory"):
        load_project(tmp_path / "nowhere")


def test_a_broken_sample_request_is_a_usage_error(project_dir: Path) -> None:
    (project_dir / "examples" / "predict_request.json").write_text("{", encoding="utf-8")
    with pytest.raises(UsageError, match=r"predict_request\.json is not valid JSON"):
        load_project(project_dir)


def test_answers_are_read_by_the_generators_own_loader(project_dir: Path) -> None:
    answers = project_dir / ".servegen-answers.yml"
    answers.write_text("project_slug: [unclosed\n", encoding="utf-8")
    with pytest.raises(
        UsageError, match=r"\.servegen-answers\.yml: not valid YAML \(.* at line 2\)"
    ):
        load_project(project_dir)
    answers.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(UsageError, match="expected a mapping of option: value"):
        load_project(project_dir)


def test_a_missing_package_name_is_derived_by_the_templates_rule(project_dir: Path) -> None:
    answers = project_dir / ".servegen-answers.yml"
    text = answers.read_text(encoding="utf-8")
    kept = [
        line for line in text.splitlines() if not line.startswith(("package_name:", "db_name:"))
    ]
    answers.write_text("\n".join(kept).replace("model-service", "fraud-scorer-2") + "\n")
    project = load_project(project_dir)
    assert (project.slug, project.db_name) == ("fraud-scorer-2", "fraud_scorer_2")
