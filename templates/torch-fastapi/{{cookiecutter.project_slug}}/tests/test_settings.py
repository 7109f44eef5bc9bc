"""Settings: secrets from files, refusal of placeholder passwords, clear errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.settings import (
    Settings,
    SettingsError,
    load_settings,
)

from conftest import PACKAGE, PROJECT_DIR

PLACEHOLDERS = [
    "",
    "   ",
    "changeme",
    "CHANGE_ME",
    "password",
    "secret",
    "<your password>",
    "${DB_PASSWORD}",
    "change-me-please",
    "root",
    "example",
]


REFUSAL = (
    "invalid settings: the database password is empty or a placeholder: set DB_PASSWORD or "
    "DB_PASSWORD_FILE to a real secret (or DEV_MODE=true for local development)"
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("DB_", "MODEL_", "BATCH", "DEV_MODE", "MAX_")):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("password", PLACEHOLDERS)
def test_placeholder_password_is_refused(monkeypatch: pytest.MonkeyPatch, password: str) -> None:
    monkeypatch.setenv("DB_PASSWORD", password)
    with pytest.raises(SettingsError, match="empty or a placeholder") as info:
        load_settings()
    # One line, and it never echoes the value.
    assert str(info.value) == REFUSAL


def test_missing_password_is_refused() -> None:
    with pytest.raises(SettingsError, match="empty or a placeholder"):
        load_settings()


def test_dev_mode_allows_a_placeholder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", "changeme")
    monkeypatch.setenv("DEV_MODE", "true")
    assert load_settings().dev_mode is True


def test_disabled_database_needs_no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_ENABLED", "false")
    assert load_settings().db_password is None


def test_password_file_is_read_without_its_newline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "db_password"
    secret.write_text("s3cr3t-Value_9\n")
    monkeypatch.setenv("DB_PASSWORD_FILE", str(secret))
    settings = load_settings()
    assert settings.db_password is not None
    assert settings.db_password.get_secret_value() == "s3cr3t-Value_9"
    assert "s3cr3t" not in repr(settings)


def test_placeholder_in_password_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "db_password"
    secret.write_text("changeme\n")
    monkeypatch.setenv("DB_PASSWORD_FILE", str(secret))
    with pytest.raises(SettingsError, match="empty or a placeholder"):
        load_settings()


def test_unreadable_password_file_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DB_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match="cannot be read"):
        load_settings()


def test_password_and_file_together_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "db_password"
    secret.write_text("another-real-secret")
    monkeypatch.setenv("DB_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("DB_PASSWORD", "a-real-secret-value")
    with pytest.raises(SettingsError, match="not both"):
        load_settings()


def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_ENABLED", "false")
    monkeypatch.setenv("MODEL_SHA256", "abc")
    monkeypatch.setenv("BATCH_MAX_SIZE", "0")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "MODEL_SHA256: must be 64 hexadecimal characters" in str(info.value)
    assert "BATCH_MAX_SIZE" in str(info.value)


@pytest.mark.parametrize(
    ("variable", "value", "needle"),
    [
        ("DB_NAME", "mysql", "system schema"),
        ("DB_NAME", "Information_Schema", "system schema"),
        ("DB_NAME", "sys", "system schema"),
        ("DB_USER", "root", "administrative account"),
        ("DB_USER", "mysql.sys", "administrative account"),
    ],
)
def test_mysql_system_names_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, needle: str
) -> None:
    monkeypatch.setenv("DB_PASSWORD", "a-real-secret-value")
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=f"{variable}: .*{needle}"):
        load_settings()


def test_items_limit_cannot_exceed_the_batch_size() -> None:
    with pytest.raises(ValueError, match="must not exceed"):
        Settings(db_enabled=False, batching_enabled=True, batch_max_size=4, max_items_per_request=8)


def _settings_table() -> list[tuple[list[str], str]]:
    """(variables, default cell) of each row of the README's settings table."""
    readme = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = []
    for row in table.splitlines():
        cells = [cell.strip() for cell in row.split("|")[1:-1]] if row.startswith("|") else []
        if len(cells) >= 3:
            rows.append((re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0]), cells[1]))
    return rows


def _as_documented(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_defaults_are_the_documented_ones() -> None:
    # The README is what users read: each literal default there is the code's default.
    checked = 0
    for names, cell in _settings_table():
        literals = re.fullmatch(r"`[^`]*`(, `[^`]*`)*", cell)
        if literals is None:
            continue  # a default described in words ("from the model's metadata")
        values = re.findall(r"`([^`]*)`", cell)
        assert len(values) == len(names), (names, cell)
        for name, documented in zip(names, values, strict=True):
            default = Settings.model_fields[name.lower()].default
            assert _as_documented(default) == documented, name
            checked += 1
    assert checked >= 25


def test_service_refuses_to_start_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "DEV_MODE"))}
    env["PYTHONPATH"] = str(PROJECT_DIR / "src")
    env["DB_PASSWORD"] = "changeme"
    result = subprocess.run(
        [sys.executable, "-m", PACKAGE],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: invalid settings:")
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_readme_documents_every_setting_and_only_those() -> None:
    readme = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    documented: set[str] = set()
    for row in table.splitlines():
        first_cell = row.split("|")[1] if row.startswith("|") else ""
        documented.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", first_cell))
    fields = {name.upper() for name in Settings.model_fields}
    assert documented == fields, (
        f"missing from the README: {sorted(fields - documented)}; "
        f"not settings: {sorted(documented - fields)}"
    )
