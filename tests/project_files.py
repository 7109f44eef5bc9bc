"""The generated project's exact file set: one list for every test that checks it.

Kept as a list here (not read from the template) so that a file appearing or vanishing
is noticed. ``{pkg}`` stands for the package name; ``TASK_FILES`` are the files that only
one task has, ``KUBERNETES_FILES`` those that only the option ``kubernetes`` renders.
"""

from __future__ import annotations

EXPECTED_FILES = [
    ".dockerignore",
    ".env.example",
    ".gitignore",
    ".servegen-answers.yml",
    "Dockerfile",
    "Makefile",
    "README.md",
    "compose.demo.yaml",
    "compose.yaml",
    "docs/containers.md",
    "docs/your-model.md",
    "examples/predict_request.json",
    "proxy/haproxy.cfg",
    "pyproject.toml",
    "requirements-dev.txt",
    "requirements.txt",
    "scripts/download_model.py",
    "scripts/make_demo_model.py",
    "scripts/strip_symbols.py",
    "secrets/README.md",
    "secrets/db_password.txt",
    "secrets/db_root_password.txt",
    "src/{pkg}/__init__.py",
    "src/{pkg}/__main__.py",
    "src/{pkg}/about.json",
    "src/{pkg}/app.py",
    "src/{pkg}/batching.py",
    "src/{pkg}/bodies.py",
    "src/{pkg}/db.py",
    "src/{pkg}/formats.py",
    "src/{pkg}/handler.py",
    "src/{pkg}/handler_base.py",
    "src/{pkg}/healthcheck.py",
    "src/{pkg}/logs.py",
    "src/{pkg}/main.py",
    "src/{pkg}/metrics.py",
    "src/{pkg}/middleware.py",
    "src/{pkg}/model.py",
    "src/{pkg}/networks.py",
    "src/{pkg}/openapi.py",
    "src/{pkg}/routes.py",
    "src/{pkg}/schemas.py",
    "src/{pkg}/server.py",
    "src/{pkg}/settings.py",
    "src/{pkg}/state.py",
    "tests/conftest.py",
    "tests/test_api.py",
    "tests/test_batching.py",
    "tests/test_db.py",
    "tests/test_download.py",
    "tests/test_errors.py",
    "tests/test_handler.py",
    "tests/test_limits.py",
    "tests/test_metrics.py",
    "tests/test_model.py",
    "tests/test_server.py",
    "tests/test_settings.py",
    "tests/test_strip_symbols.py",
    "tests/test_walkthrough.py",
    "wheels/README.md",
]

#: task -> the files only a project of that task has.
TASK_FILES = {
    "tensor": ["src/{pkg}/tensors.py", "tests/test_tensors.py"],
    "image-classification": [
        "examples/image.jpg",
        "src/{pkg}/images.py",
        "tests/test_images.py",
    ],
}


#: The files of the option ``kubernetes`` (none of them is rendered when it is off).
KUBERNETES_FILES = [
    "deploy/k8s/base/deployment.yaml",
    "deploy/k8s/base/hpa.yaml",
    "deploy/k8s/base/kustomization.yaml",
    "deploy/k8s/base/pdb.yaml",
    "deploy/k8s/base/service.yaml",
    "deploy/k8s/overlays/development/hpa-patch.yaml",
    "deploy/k8s/overlays/development/kustomization.yaml",
    "deploy/k8s/overlays/development/model-server-deployment.yaml",
    "deploy/k8s/overlays/development/model-server-service.yaml",
    "deploy/k8s/overlays/development/mysql-service.yaml",
    "deploy/k8s/overlays/development/mysql-statefulset.yaml",
    "deploy/k8s/overlays/development/secrets/.gitignore",
    "deploy/k8s/overlays/development/secrets/README.md",
    "deploy/k8s/overlays/production/database.env",
    "deploy/k8s/overlays/production/kustomization.yaml",
    "deploy/k8s/overlays/production/model.env",
    "docs/kubernetes.md",
]


def expected_files(package: str, task: str = "tensor", kubernetes: bool = False) -> list[str]:
    """Return the files of a generated project of ``package`` and ``task``, sorted."""
    names = [*EXPECTED_FILES, *TASK_FILES[task], *(KUBERNETES_FILES if kubernetes else [])]
    return sorted(name.format(pkg=package) for name in names)
