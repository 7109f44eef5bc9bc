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
    with pytest.raises(UsageError, match=r"missing Dockerfile, requirements\.txt"):
        load_project(tmp_path)
    with pytest.raises(UsageError, match="is not a directory"):
        load_project(tmp_path / "nowhere")


def test_a_broken_sample_request_is_a_usage_error(project_dir: Path) -> None:
    (project_dir / "examples" / "predict_request.json").write_text("{", encoding="utf-8")
    with pytest.raises(UsageError, match=r"predict_request\.json is not valid JSON"):
        load_project(project_dir)
