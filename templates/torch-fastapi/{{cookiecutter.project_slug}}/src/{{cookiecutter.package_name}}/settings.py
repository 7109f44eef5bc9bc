"""Service settings, read once from the environment (and secret files).

Every setting is an environment variable named like the field in upper case
(``MODEL_PATH``, ``BATCH_MAX_SIZE``...). Secrets can also come from files, the way
compose and Kubernetes deliver them: ``DB_PASSWORD_FILE=/run/secrets/db_password``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Passwords that come from examples and templates, never from a real secret store.
PLACEHOLDER_PASSWORDS = frozenset(
    {
        "password",
        "passw0rd",
        "secret",
        "changeme",
        "change-me",
        "change_me",
        "changeit",
        "replaceme",
        "replace-me",
        "example",
        "placeholder",
        "todo",
        "fixme",
        "root",
        "admin",
        "mysql",
        "test",
        "default",
        "xxx",
    }
)
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
#: Schemas and accounts MySQL keeps for itself: the service's user is granted everything
#: on its database, so neither may be one of these.
#: Ref: https://dev.mysql.com/doc/refman/8.4/en/system-schema.html
#: Ref: https://dev.mysql.com/doc/refman/8.4/en/reserved-accounts.html
SYSTEM_SCHEMAS = frozenset({"mysql", "sys", "information_schema", "performance_schema"})
RESERVED_USERS = frozenset({"root", "mysql.sys", "mysql.session", "mysql.infoschema"})
_SHAPE_RE = re.compile(r"^\s*\d+\s*(,\s*\d+\s*)*$")


class SettingsError(ValueError):
    """Settings cannot be used; ``str()`` is one line meant for the operator."""


def is_placeholder_password(value: str) -> bool:
    """True for an empty, blank or well-known example password."""
    stripped = value.strip().lower()
    if not stripped:
        return True
    if stripped in PLACEHOLDER_PASSWORDS:
        return True
    # "<your password>", "${DB_PASSWORD}", "change-me-please" and the like.
    return bool(re.match(r"^(<.*>|\$\{.*\}|change.?me.*|your.?password.*|\*+)$", stripped))


def default_threads() -> int:
    """CPUs this process may run on (respects affinity masks and cpusets)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


class Settings(BaseSettings):
    """All knobs of the service; see the README for the table of variables."""

    model_config = SettingsConfigDict(
        env_prefix="",
        case_sensitive=False,
        env_ignore_empty=True,
        extra="ignore",
        # Field names such as model_path would otherwise clash with pydantic's namespace.
        protected_namespaces=(),
    )

    # HTTP server
    host: str = Field("0.0.0.0", description="Address to bind.")  # noqa: S104 - containers must listen on all interfaces
    port: int = Field({{ cookiecutter.api_port | int }}, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64, description="Processes; each has its own batcher.")
    graceful_shutdown_s: int = Field(10, ge=0, le=600)
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest accepted request body.")
    max_items_per_request: int | None = Field(None, ge=1)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    access_log: Literal["errors", "all", "off"] = Field(
        "errors", description="Which requests get an INFO access line."
    )
    log_json: bool = True
    dev_mode: bool = False

    # Model
    model_path: Path = Path("/models/model.pt")
    model_sha256: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    model_input_shape: str | None = Field(None, description="Per-item shape, e.g. '3,224,224'.")
    model_input_dtype: Literal["float32", "float64", "float16", "bfloat16", "int64", "int32"] = (
        "float32"
    )
    device: Literal["cpu", "cuda", "auto"] = {{ ("cuda" if cookiecutter.accelerator == "cuda" else "cpu") | json_str }}
    torch_threads: int = Field(0, ge=0, description="Intra-op threads; 0 means one per CPU.")

    # Micro-batching
    batching_enabled: bool = {{ "True" if cookiecutter.batching else "False" }}
    batch_max_size: int = Field({{ cookiecutter.batch_max_size | int }}, ge=1, le=4096)
    batch_max_wait_ms: float = Field({{ cookiecutter.batch_max_wait_ms | int }}, ge=0, le=1000)
    batch_queue_max: int = Field(1024, ge=1, description="Waiting requests before 503.")

    # Prediction log (MySQL)
    db_enabled: bool = True
    db_host: str = "db"
    db_port: int = Field(3306, ge=1, le=65535)
    db_name: str = {{ cookiecutter.db_name | json_str }}
    db_user: str = "app"
    db_password: SecretStr | None = None
    db_password_file: Path | None = None
    db_connect_timeout_s: int = Field(3, ge=1, le=60)
    db_read_timeout_s: int = Field(5, ge=1, le=300)
    db_write_timeout_s: int = Field(5, ge=1, le=300)
    db_queue_max: int = Field(10_000, ge=1, description="Log records held while the DB is slow.")
    db_batch_max: int = Field(200, ge=1, le=10_000)
    db_flush_interval_ms: int = Field(200, ge=1, le=60_000)
    db_retry_max_s: float = Field(10.0, gt=0, le=300)
    db_shutdown_flush_s: float = Field(5.0, ge=0, le=120)
    db_outputs_max_bytes: int = Field(65_536, ge=0, description="Larger outputs are not stored.")

    @field_validator("model_sha256")
    @classmethod
    def _check_sha256(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().lower()
        if not _SHA256_RE.match(value):
            raise ValueError("must be 64 hexadecimal characters")
        return value

    @field_validator("db_name")
    @classmethod
    def _check_db_name(cls, value: str) -> str:
        if value.lower() in SYSTEM_SCHEMAS:
            raise ValueError(
                f"{value!r} is a MySQL system schema; the prediction log needs a database "
                "of its own"
            )
        return value

    @field_validator("db_user")
    @classmethod
    def _check_db_user(cls, value: str) -> str:
        if value.lower() in RESERVED_USERS:
            raise ValueError(
                f"{value!r} is a MySQL administrative account; the service logs in as an "
                "ordinary user that owns only its own database"
            )
        return value

    @field_validator("model_input_shape")
    @classmethod
    def _check_shape(cls, value: str | None) -> str | None:
        if value is not None and not _SHAPE_RE.match(value):
            raise ValueError("must be comma-separated positive integers, e.g. '3,224,224'")
        return value

    @model_validator(mode="after")
    def _check_combination(self) -> Settings:
        if self.db_password_file is not None:
            if self.db_password is not None:
                raise ValueError("set DB_PASSWORD or DB_PASSWORD_FILE, not both")
            try:
                text = self.db_password_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise ValueError(
                    f"DB_PASSWORD_FILE {self.db_password_file} cannot be read ({exc.strerror})"
                ) from None
            # Secret files usually end with a newline that is not part of the secret.
            self.db_password = SecretStr(text.rstrip("\r\n"))
        if self.db_enabled and not self.dev_mode:
            password = self.db_password.get_secret_value() if self.db_password else ""
            if is_placeholder_password(password):
                raise ValueError(
                    "the database password is empty or a placeholder: set DB_PASSWORD or "
                    "DB_PASSWORD_FILE to a real secret (or DEV_MODE=true for local development)"
                )
        if self.batching_enabled and self.items_limit > self.batch_max_size:
            raise ValueError(
                f"MAX_ITEMS_PER_REQUEST ({self.items_limit}) must not exceed "
                f"BATCH_MAX_SIZE ({self.batch_max_size}) while batching is on"
            )
        return self

    @property
    def items_limit(self) -> int:
        """Most items one request may carry."""
        if self.max_items_per_request is not None:
            return self.max_items_per_request
        return self.batch_max_size if self.batching_enabled else 256

    @property
    def threads(self) -> int:
        """Intra-op threads for torch."""
        return self.torch_threads or default_threads()

    @property
    def input_shape_override(self) -> tuple[int, ...] | None:
        """``MODEL_INPUT_SHAPE`` as a tuple, when set."""
        if self.model_input_shape is None:
            return None
        return tuple(int(part) for part in self.model_input_shape.split(","))


def load_settings() -> Settings:
    """Read the settings; raise SettingsError with one readable line when they are wrong."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]).upper()
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{field}: {message}" if field else message)
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
