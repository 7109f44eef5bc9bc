"""The Kubernetes manifests (option ``kubernetes``), proved without a cluster.

Every variant of the option matrix (conftest.py) is rendered with ``kubernetes=yes``, and:

- every manifest that a kustomization lists validates strictly against the Kubernetes
  API schemas of ``KUBERNETES_VERSIONS`` (kubernetes-validate, pinned in the dev extra;
  strict: an unknown field is an error);
- both overlays build with kustomize (``kustomize build`` or ``kubectl kustomize``), the
  output validates too, and every ConfigMap, Secret, key and selector in it resolves
  (but the production Secret, which the operator creates);
- the manifests agree with the rest of the project: the port, the probe paths, every
  environment variable name (a field of the service's Settings, or one the downloader
  reads), the user, the model path and the hardening against compose.yaml and the
  Dockerfile, the grace period against settings.py's shutdown defaults;
- no password is written in them.

With the option off, none of it is rendered. Without a kustomize v5 binary the build
tests skip with the reason, or fail when ``SERVEGEN_REQUIRE_DOCKER=1`` (CI), for which
ci/setup-kustomize.sh provides one.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from gen_helpers import TEMPLATE_DIR, private_home, render, render_cookiecutter, tree
from project_files import KUBERNETES_FILES, expected_files

#: Kubernetes releases whose API schemas every manifest must satisfy: the one the
#: generated docs name, and the newest that the pinned kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.32", "1.37")
#: The oldest kustomize the overlays are written for (kubectl 1.27 embeds v5.0).
KUSTOMIZE_MAJOR = 5
K8S = Path("deploy/k8s")
OVERLAYS = ("development", "production")
#: What the downloader reads besides the service's settings (scripts/download_model.py).
DOWNLOADER_VARIABLES = ("MODEL_URL", "MODEL_SHA256", "MODEL_SHA256_URL", "MODEL_PATH")
#: The image's user and group (docs/architecture.md, the contract table).
IMAGE_USER = 10001
#: YAML files under deploy/k8s that are not whole Kubernetes objects.
NOT_OBJECTS = {"kustomization.yaml", "hpa-patch.yaml"}
#: RFC 1035 label: a Service's name (at most 63 characters).
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
PASSWORD_KEY = re.compile(r"passw(or)?d", re.IGNORECASE)

_RENDERED: dict[str, Path] = {}
_BUILT: dict[tuple[str, str], list[dict[str, Any]]] = {}

Doc = dict[str, Any]


# ------------------------------------------------------------------------ rendering


def _render_once(answers: dict[str, Any], factory: pytest.TempPathFactory) -> Path:
    key = json.dumps(answers, sort_keys=True)
    if key not in _RENDERED:
        _RENDERED[key] = render(answers, factory.mktemp("k8s") / "project")
    return _RENDERED[key]


@pytest.fixture
def answers(matrix_answers: dict[str, Any]) -> dict[str, Any]:
    """One matrix entry with the option on."""
    return {**matrix_answers, "kubernetes": True}


@pytest.fixture
def project(answers: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project of one matrix entry with the option on (rendered once per session)."""
    return _render_once(answers, tmp_path_factory)


def recorded(project: Path) -> dict[str, Any]:
    """The project's recorded answers."""
    data: dict[str, Any] = yaml.safe_load((project / ".servegen-answers.yml").read_text("utf-8"))
    return data


def read_docs(path: Path) -> list[Doc]:
    """The YAML documents of a file (empty ones left out)."""
    return [doc for doc in yaml.safe_load_all(path.read_text("utf-8")) if doc]


def manifest_files(project: Path) -> list[Path]:
    """Every file that a kustomization under deploy/k8s lists as a resource."""
    found = set()
    for kustomization in (project / K8S).rglob("kustomization.yaml"):
        (spec,) = read_docs(kustomization)
        for entry in spec.get("resources", []):
            path = (kustomization.parent / entry).resolve()
            if path.is_file():
                found.add(path)
    return sorted(found)


def k8s_name(project: Path) -> str:
    """The name of the service's objects: the slug, cut to fit Kubernetes' limits."""
    return str(recorded(project)["project_slug"])[:40].strip("-")


def project_image(project: Path) -> str:
    """The image the manifests run by default."""
    return f"{recorded(project)['project_slug']}:latest"


# ------------------------------------------------------------------------ validation


def schema_error(doc: Doc, version: str) -> str | None:
    """Why an object is not valid in a Kubernetes version (strictly), or None."""
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        field = ".".join(str(part) for part in exc.path)
        return f"{field}: {exc.message}"
    except kubernetes_validate.SchemaNotFoundError as exc:
        return str(exc.message)
    return None


def validate(doc: Doc, where: str) -> None:
    """Validate one object strictly against every pinned schema; fail naming the field."""
    ident = f"{where}: {doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
    for version in KUBERNETES_VERSIONS:
        error = schema_error(doc, version)
        if error is not None:
            pytest.fail(f"{ident} is not valid in Kubernetes {version}: {error}")


# ------------------------------------------------------------------------ kustomize


def _version(text: str) -> tuple[int, ...] | None:
    match = re.search(r"v(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(part) for part in match.groups()) if match else None


def _kubectl_kustomize_version(kubectl: str) -> tuple[int, ...] | None:
    out = subprocess.run(
        [kubectl, "version", "--client", "-o", "json"], capture_output=True, text=True
    )
    try:
        # kubectl 1.24 and newer report their built-in kustomize; older ones do not.
        return _version(str(json.loads(out.stdout).get("kustomizeVersion", "")))
    except json.JSONDecodeError:
        return None


@cache
def find_kustomize() -> tuple[str, ...] | str:
    """Return the build command of a kustomize v5 or newer, or why there is none.

    A standalone ``kustomize`` first, then kubectl's built-in one. An older kustomize
    (Debian 12's kubectl 1.20 embeds v2) cannot read the overlays.
    """
    seen = []
    kustomize = shutil.which("kustomize")
    if kustomize:
        out = subprocess.run([kustomize, "version"], capture_output=True, text=True)
        version = _version(out.stdout)
        if version and version[0] >= KUSTOMIZE_MAJOR:
            return (kustomize, "build")
        seen.append(f"{kustomize}: {out.stdout.strip() or 'no version'}")
    kubectl = shutil.which("kubectl")
    if kubectl:
        version = _kubectl_kustomize_version(kubectl)
        if version and version[0] >= KUSTOMIZE_MAJOR:
            return (kubectl, "kustomize")
        shown = "v" + ".".join(map(str, version)) if version else "too old to say"
        seen.append(f"{kubectl}: built-in kustomize {shown}")
    if not seen:
        return "neither kustomize nor kubectl is on PATH (ci/setup-kustomize.sh installs one)"
    return f"no kustomize v{KUSTOMIZE_MAJOR} or newer ({'; '.join(seen)})"


@pytest.fixture(scope="session")
def kustomize() -> tuple[str, ...]:
    """The kustomize build command; skip without one, or fail when CI requires it."""
    found = find_kustomize()
    if isinstance(found, str):
        if os.environ.get("SERVEGEN_REQUIRE_DOCKER") == "1":
            pytest.fail(f"kustomize required (SERVEGEN_REQUIRE_DOCKER=1) but {found}")
        pytest.skip(found)
    return found


def copy_deploy(project: Path, dest: Path) -> Path:
    """Copy deploy/ and create the development passwords as docs/kubernetes.md says."""
    shutil.copytree(project / "deploy", dest / "deploy")
    for name in ("db_password.txt", "db_root_password.txt"):
        shutil.copy(project / "secrets" / name, dest / K8S / "overlays/development/secrets")
    return dest


def build(kustomize: tuple[str, ...], root: Path, overlay: str) -> list[Doc]:
    """Build an overlay of ``root`` (a project, or a copy of its deploy/)."""
    out = subprocess.run(
        [*kustomize, str(root / K8S / "overlays" / overlay)], capture_output=True, text=True
    )
    assert out.returncode == 0, f"kustomize build of {overlay} failed:\n{out.stderr}"
    # kustomize warns on stderr about deprecated fields: the overlays use none.
    assert not out.stderr.strip(), f"kustomize build of {overlay} warned:\n{out.stderr}"
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def built(
    project: Path, overlay: str, kustomize: tuple[str, ...], factory: pytest.TempPathFactory
) -> list[Doc]:
    """The objects of one overlay of a project (built once per session)."""
    key = (str(project), overlay)
    if key not in _BUILT:
        _BUILT[key] = build(kustomize, copy_deploy(project, factory.mktemp("build")), overlay)
    return _BUILT[key]


# ------------------------------------------------------------------------ reading objects


def pod_specs(docs: list[Doc]) -> Iterator[tuple[str, Doc]]:
    """(workload name, pod spec) of every Deployment and StatefulSet."""
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet"):
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


def containers(spec: Doc) -> list[Doc]:
    """The init containers and containers of a pod spec."""
    return [*spec.get("initContainers", []), *spec["containers"]]


def one(docs: list[Doc], kind: str, name: str) -> Doc:
    """The one object of a kind and name."""
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def named(items: list[Doc]) -> dict[str, Doc]:
    """Named things (containers, variables, volumes, ports) by name."""
    return {item["name"]: item for item in items}


def base_docs(project: Path) -> list[Doc]:
    """The objects of the base, as written."""
    base = project / K8S / "base"
    return [
        doc for path in manifest_files(project) if path.parent == base for doc in read_docs(path)
    ]


def all_docs(project: Path) -> list[Doc]:
    """The objects of every manifest, as written."""
    return [doc for path in manifest_files(project) for doc in read_docs(path)]


def service_spec(project: Path) -> Doc:
    """The pod spec of the service's Deployment, as written."""
    spec: Doc = one(base_docs(project), "Deployment", k8s_name(project))["spec"]["template"]["spec"]
    return spec


def image_containers(docs: list[Doc], image: str) -> list[Doc]:
    """Every container that runs the project's image."""
    return [c for _, spec in pod_specs(docs) for c in containers(spec) if c["image"] == image]


# ------------------------------------------------------------------------ the rest of the project


def compose(project: Path) -> Doc:
    """compose.yaml, parsed (its anchors and merge keys resolved)."""
    data: Doc = yaml.safe_load((project / "compose.yaml").read_text("utf-8"))
    return data


def settings_defaults(project: Path) -> dict[str, Any]:
    """The service's settings (upper case) with their literal defaults (None if not literal).

    Read from the rendered settings.py with ``ast``: exactly the fields the class
    declares, without installing the service's dependencies.
    """
    path = project / "src" / str(recorded(project)["package_name"]) / "settings.py"
    module = ast.parse(path.read_text("utf-8"))
    (cls,) = [n for n in module.body if isinstance(n, ast.ClassDef) and n.name == "Settings"]
    fields: dict[str, Any] = {}
    for node in cls.body:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        if node.target.id == "model_config":
            continue
        value = node.value
        if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "Field":
            value = value.args[0] if value.args else None
        try:
            default = ast.literal_eval(value) if value is not None else None
        except ValueError:
            default = None  # Path("/models/..."): the name is what counts
        fields[node.target.id.upper()] = default
    return fields


def dockerfile_args(project: Path) -> dict[str, str]:
    """The ARG defaults of the Dockerfile."""
    text = (project / "Dockerfile").read_text("utf-8")
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", text, flags=re.MULTILINE))


def env_value(container: Doc, name: str) -> str:
    """The literal value of a container's variable."""
    value: str = named(container["env"])[name]["value"]
    return value


# ================================================================== the option


def test_option_on_renders_the_tree_and_links_its_doc(
    project: Path, answers: dict[str, Any]
) -> None:
    data = recorded(project)
    assert data["kubernetes"] is True
    actual = sorted(p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file())
    assert actual == expected_files(data["package_name"], answers["task"], kubernetes=True)
    assert "(docs/kubernetes.md)" in (project / "README.md").read_text("utf-8")
    # Every generated file is in the manifest that `servegen new --force` relies on.
    assert set(KUBERNETES_FILES) <= set(data["_files"])


def test_option_off_renders_none_of_it(tmp_path: Path) -> None:
    project = render({}, tmp_path / "project")
    data = recorded(project)
    assert data["kubernetes"] is False
    assert not (project / "deploy").exists()
    assert not (project / "docs" / "kubernetes.md").exists()
    assert "kubernetes" not in (project / "README.md").read_text("utf-8").lower()
    assert not set(KUBERNETES_FILES) & set(data["_files"])


def test_option_off_keeps_a_users_own_files_in_deploy(tmp_path: Path) -> None:
    # Plain cookiecutter can render over an existing project: turning the option off
    # removes what the template rendered, never a file of the user's in those folders.
    first = render_cookiecutter({"kubernetes": True}, tmp_path)
    own = first / "deploy" / "k8s" / "overlays" / "staging.yaml"
    own.write_text("kind: Mine\n", encoding="utf-8")
    command = [sys.executable, "-m", "cookiecutter", "--no-input", "--overwrite-if-exists"]
    command += ["-o", str(tmp_path), str(TEMPLATE_DIR), "kubernetes=no"]
    with private_home() as env:
        out = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert own.read_text("utf-8") == "kind: Mine\n"
    assert [p.relative_to(first).as_posix() for p in (first / "deploy").rglob("*")] == [
        "deploy/k8s",
        "deploy/k8s/overlays",
        "deploy/k8s/overlays/staging.yaml",
    ]
    assert not (first / "docs" / "kubernetes.md").exists()


def test_option_is_last_and_off_by_default() -> None:
    from generator.template import load_template

    template = load_template()
    assert template.rules.ORDER[-1] == "kubernetes"
    assert template.rule("kubernetes").kind == "bool"
    assert template.raw_default("kubernetes") is False


@pytest.mark.parametrize("interactive", [True, False], ids=["prompts", "no-input"])
@pytest.mark.parametrize("accelerator", ["cpu", "cuda"])
def test_plain_cookiecutter_renders_the_same_tree(
    tmp_path: Path, accelerator: str, interactive: bool
) -> None:
    answers = {
        "project_name": "Fraud Scorer",
        "accelerator": accelerator,
        "api_port": "9100",
        "kubernetes": True,
    }
    ours = render(answers, tmp_path / "servegen" / "project")
    (tmp_path / "cookiecutter").mkdir()
    theirs = render_cookiecutter(answers, tmp_path / "cookiecutter", interactive=interactive)
    a, b = tree(ours), tree(theirs)
    assert sorted(a) == sorted(b)
    assert [name for name in a if a[name] != b[name]] == []
    assert (theirs / "deploy" / "k8s").is_dir()


# ================================================================== valid objects


def test_every_manifest_validates_strictly(project: Path) -> None:
    files = manifest_files(project)
    # Every YAML file is a listed manifest, a kustomization or a patch (built below).
    yaml_files = {p.name for p in (project / K8S).rglob("*.yaml")}
    assert yaml_files == {p.name for p in files} | NOT_OBJECTS
    kinds = set()
    for path in files:
        for doc in read_docs(path):
            validate(doc, str(path.relative_to(project)))
            kinds.add(doc["kind"])
    assert kinds == {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "StatefulSet",
    }


def test_files_hold_no_template_syntax(project: Path) -> None:
    paths = [p for p in (project / K8S).rglob("*") if p.is_file()] + [
        project / "docs/kubernetes.md"
    ]
    for path in paths:
        for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
            assert not re.search(r"\{\{|\{%|\{#|cookiecutter\.", line), (
                f"{path.relative_to(project)}:{number}: {line}"
            )


def test_names_fit_kubernetes_limits(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # The longest slug the rules accept (64 characters) still gives valid names.
    slug = "a" * 30 + "-" + "b" * 33
    project = render(
        {"project_name": "Long", "project_slug": slug, "kubernetes": True}, tmp_path / "p"
    )
    for doc in all_docs(project):
        name = doc["metadata"]["name"]
        limit = 52 if doc["kind"] == "StatefulSet" else 63  # + "-<revision hash>" as a label
        assert DNS_LABEL.match(name) and len(name) <= limit, f"{doc['kind']} {name!r}"
        for value in doc["metadata"].get("labels", {}).values():
            assert len(value) <= 63, value
    assert all(
        c["image"] in (f"{slug}:latest", "mysql:8.4")
        for _, spec in pod_specs(all_docs(project))
        for c in containers(spec)
    )


# ================================================================== the overlays


def _stem(doc: Doc) -> tuple[str, str]:
    """Kind and name, without the content hash kustomize adds to generated objects."""
    name = doc["metadata"]["name"]
    if doc["kind"] in ("ConfigMap", "Secret"):
        name = name.rsplit("-", 1)[0]
    return doc["kind"], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_builds_and_validates(
    project: Path,
    overlay: str,
    kustomize: tuple[str, ...],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    docs = built(project, overlay, kustomize, tmp_path_factory)
    for doc in docs:
        validate(doc, f"kustomize build overlays/{overlay}")
    name = k8s_name(project)
    expected = [
        ("ConfigMap", f"{name}-db"),
        ("ConfigMap", f"{name}-model"),
        ("Deployment", name),
        ("HorizontalPodAutoscaler", name),
        ("PodDisruptionBudget", name),
        ("Service", name),
    ]
    if overlay == "development":
        expected += [
            ("Deployment", f"{name}-model-server"),
            ("Secret", f"{name}-db"),
            ("Service", f"{name}-model-server"),
            ("Service", f"{name}-mysql"),
            ("StatefulSet", f"{name}-mysql"),
        ]
    assert sorted(_stem(doc) for doc in docs) == sorted(expected)
    # Development runs one or two replicas (often on one node); production the base's.
    hpa = one(docs, "HorizontalPodAutoscaler", name)["spec"]
    (base_hpa,) = [d["spec"] for d in base_docs(project) if d["kind"] == "HorizontalPodAutoscaler"]
    if overlay == "development":
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 2)
    else:
        assert hpa == base_hpa
    # The image is <slug>:latest until the overlay's `images:` says otherwise.
    assert {c["image"] for _, spec in pod_specs(docs) for c in containers(spec)} <= {
        project_image(project),
        "mysql:8.4",
    }
    assert len(image_containers(docs, project_image(project))) == (
        3 if overlay == "development" else 2
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_references_resolve(
    project: Path,
    overlay: str,
    kustomize: tuple[str, ...],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    docs = built(project, overlay, kustomize, tmp_path_factory)
    name = k8s_name(project)
    keys = {
        (d["kind"], d["metadata"]["name"]): set(d.get("data", {}))
        for d in docs
        if d["kind"] in ("ConfigMap", "Secret")
    }
    if overlay == "production":
        # The Secret the operator creates (docs/kubernetes.md, production, step 3).
        keys[("Secret", f"{name}-db")] = {"db_password"}
    refs = []
    for workload, spec in pod_specs(docs):
        for container in containers(spec):
            for env in container.get("env", []):
                source = env.get("valueFrom", {})
                if "configMapKeyRef" in source:
                    refs.append((workload, "ConfigMap", source["configMapKeyRef"]))
                if "secretKeyRef" in source:
                    refs.append((workload, "Secret", source["secretKeyRef"]))
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                for item in volume["secret"].get("items", [{"key": None}]):
                    refs.append(
                        (
                            workload,
                            "Secret",
                            {"name": volume["secret"]["secretName"], "key": item["key"]},
                        )
                    )
    assert refs
    for workload, kind, ref in refs:
        assert (kind, ref["name"]) in keys, f"{workload} refers to a missing {kind} {ref['name']}"
        if ref["key"] is not None:
            assert ref["key"] in keys[(kind, ref["name"])], (
                f"{workload}: {kind} {ref['name']} has no {ref['key']}"
            )
    # Selectors find their pods; the autoscaler finds its Deployment.
    pods = {
        wl: doc["spec"]["template"]["metadata"]["labels"]
        for doc in docs
        if doc["kind"] in ("Deployment", "StatefulSet")
        for wl in [doc["metadata"]["name"]]
    }
    for workload, doc in (
        (d["metadata"]["name"], d) for d in docs if d["kind"] in ("Deployment", "StatefulSet")
    ):
        assert doc["spec"]["selector"]["matchLabels"].items() <= pods[workload].items()
    for doc in docs:
        selector = {
            "Service": lambda d: d["spec"]["selector"],
            "PodDisruptionBudget": lambda d: d["spec"]["selector"]["matchLabels"],
        }.get(doc["kind"])
        if selector:
            matched = [wl for wl, labels in pods.items() if selector(doc).items() <= labels.items()]
            assert len(matched) == 1, f"{doc['kind']} {doc['metadata']['name']} selects {matched}"
    target = one(docs, "HorizontalPodAutoscaler", name)["spec"]["scaleTargetRef"]
    assert target == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}


def test_development_secret_holds_the_files(
    project: Path, kustomize: tuple[str, ...], tmp_path_factory: pytest.TempPathFactory
) -> None:
    docs = built(project, "development", kustomize, tmp_path_factory)
    (secret,) = [d for d in docs if d["kind"] == "Secret"]
    for key in ("db_password", "db_root_password"):
        expected = (project / "secrets" / f"{key}.txt").read_bytes()
        assert base64.b64decode(secret["data"][key]) == expected
    # The service sees only its own password; MySQL both, as in compose.
    spec = one(docs, "Deployment", k8s_name(project))["spec"]["template"]["spec"]
    (volume,) = [v for v in spec["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    assert volume["secret"]["items"] == [{"key": "db_password", "path": "db_password"}]


def test_images_are_changed_with_kustomize_images(
    project: Path, kustomize: tuple[str, ...], tmp_path: Path
) -> None:
    root = copy_deploy(project, tmp_path)
    slug = recorded(project)["project_slug"]
    for overlay in OVERLAYS:
        path = root / K8S / "overlays" / overlay / "kustomization.yaml"
        (spec,) = read_docs(path)
        (entry,) = [e for e in spec["images"] if e["name"] == slug]
        entry.update(newName=f"registry.example.com/team/{slug}", newTag="1.2.3")
        path.write_text(yaml.safe_dump(spec), encoding="utf-8")
        docs = build(kustomize, root, overlay)
        images = {c["image"] for _, pod in pod_specs(docs) for c in containers(pod)}
        assert images - {"mysql:8.4"} == {f"registry.example.com/team/{slug}:1.2.3"}


# ================================================================== consistency


def test_port_is_the_services_and_composes(project: Path) -> None:
    port = int(recorded(project)["api_port"])
    services = compose(project)["services"]
    app = services["app"]
    assert int(app["environment"]["PORT"]) == port
    # compose publishes the proxy, which listens on the same port and sends to the app's.
    assert "ports" not in app
    assert [int(p.rsplit(":", 1)[1]) for p in services["proxy"]["ports"]] == [port]
    haproxy = (project / "proxy" / "haproxy.cfg").read_text("utf-8")
    assert re.search(rf"^    bind :{port}$", haproxy, re.MULTILINE)
    assert re.search(rf"^    server-template app \d+ app:{port} ", haproxy, re.MULTILINE)
    assert re.search(rf"^EXPOSE {port}$", (project / "Dockerfile").read_text("utf-8"), re.MULTILINE)
    container = named(service_spec(project)["containers"])["app"]
    assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    assert int(env_value(container, "PORT")) == port
    (service,) = [d for d in base_docs(project) if d["kind"] == "Service"]
    assert service["spec"]["ports"] == [
        {"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}
    ]


def test_probes_are_the_services_endpoints(project: Path) -> None:
    package = recorded(project)["package_name"]
    routes = (project / "src" / package / "routes.py").read_text("utf-8")
    healthcheck = (project / "src" / package / "healthcheck.py").read_text("utf-8")
    container = named(service_spec(project)["containers"])["app"]
    paths = {
        kind: container[kind]["httpGet"]["path"]
        for kind in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    assert paths == {
        "startupProbe": "/ready",
        "readinessProbe": "/ready",
        "livenessProbe": "/health",
    }
    for path in set(paths.values()):
        assert f'@router.get("{path}"' in routes, f"the service has no GET {path}"
        assert f'"{path}"' in healthcheck  # the container health checks probe the same
    for kind in paths:
        assert container[kind]["httpGet"]["port"] == "http"
    # Start-up allows minutes for a model to load; liveness only follows it.
    startup = container["startupProbe"]
    assert 120 <= startup["periodSeconds"] * startup["failureThreshold"] <= 600
    assert "initialDelaySeconds" not in container["livenessProbe"]


def test_variables_are_settings_or_the_downloaders(project: Path) -> None:
    settings = set(settings_defaults(project))
    downloader = (project / "scripts" / "download_model.py").read_text("utf-8")
    for name in DOWNLOADER_VARIABLES:
        assert f'env.get("{name}")' in downloader, f"the downloader does not read {name}"
    allowed = settings | set(DOWNLOADER_VARIABLES)
    docs = all_docs(project)
    image = project_image(project)
    for container in image_containers(docs, image):
        names = {env["name"] for env in container.get("env", [])}
        assert names <= allowed, f"{container['name']}: not settings: {sorted(names - allowed)}"
    # The app's variables are its settings; the downloader's, what it reads.
    spec = service_spec(project)
    assert {e["name"] for e in named(spec["containers"])["app"]["env"]} <= settings
    assert {e["name"] for e in named(spec["initContainers"])["model-downloader"]["env"]} == set(
        DOWNLOADER_VARIABLES
    )
    # MySQL gets the variables compose gives it.
    db_env = set(compose(project)["services"]["db"]["environment"])
    for _, pod in pod_specs(docs):
        for container in containers(pod):
            if container["image"].startswith("mysql:"):
                assert {env["name"] for env in container["env"]} == db_env
    # ConfigMap keys are read as variables of the same name: settings or the downloader's.
    for kustomization in (project / K8S).rglob("kustomization.yaml"):
        (spec,) = read_docs(kustomization)
        for generator in spec.get("configMapGenerator", []):
            keys = {literal.split("=", 1)[0] for literal in generator.get("literals", [])}
            for env_file in generator.get("envs", []):
                lines = (kustomization.parent / env_file).read_text("utf-8").splitlines()
                keys |= {
                    ln.split("=", 1)[0] for ln in lines if ln.strip() and not ln.startswith("#")
                }
            assert keys <= allowed, (
                f"{kustomization.relative_to(project)}: {sorted(keys - allowed)}"
            )


def test_user_is_the_images(project: Path) -> None:
    args = dockerfile_args(project)
    assert int(args["APP_UID"]) == int(args["APP_GID"]) == IMAGE_USER
    services = compose(project)["services"]
    for name, service in services.items():
        # The proxy runs another image, as that image's own user.
        if "user" in service and service.get("image") == services["app"]["image"]:
            assert service["user"] == f"{IMAGE_USER}:{IMAGE_USER}", name
    image = project_image(project)
    for workload, spec in pod_specs(all_docs(project)):
        if any(c["image"] == image for c in containers(spec)):
            context = spec["securityContext"]
            assert (
                context["runAsUser"] == context["runAsGroup"] == context["fsGroup"] == IMAGE_USER
            ), workload
            assert context["runAsNonRoot"] is True, workload


def test_hardening_is_composes(project: Path) -> None:
    services = compose(project)["services"]
    for compose_name in ("app", "model-downloader"):
        hardening = services[compose_name]
        assert hardening["read_only"] is True
        assert hardening["tmpfs"] == ["/tmp"]
        assert "no-new-privileges:true" in hardening["security_opt"]
        assert hardening["cap_drop"] == ["ALL"]
    image = project_image(project)
    checked = 0
    for workload, spec in pod_specs(all_docs(project)):
        assert spec["automountServiceAccountToken"] is False, workload
        assert spec["enableServiceLinks"] is False, workload
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, workload
        volumes = named(spec.get("volumes", []))
        for container in containers(spec):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            if container["image"] != image:
                continue
            # compose's read_only and tmpfs at /tmp.
            assert context["readOnlyRootFilesystem"] is True, (workload, container["name"])
            (tmp,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert "emptyDir" in volumes[tmp["name"]]
            checked += 1
    assert checked == 3  # downloader, app, demo model server


def test_model_path_is_composes(project: Path) -> None:
    services = compose(project)["services"]
    path = services["app"]["environment"]["MODEL_PATH"]
    assert services["model-downloader"]["environment"]["MODEL_PATH"] == path
    assert settings_defaults(project)  # the service reads MODEL_PATH (a settings field)
    spec = service_spec(project)
    downloader = named(spec["initContainers"])["model-downloader"]
    app = named(spec["containers"])["app"]
    assert env_value(downloader, "MODEL_PATH") == env_value(app, "MODEL_PATH") == path
    # One volume: written by the downloader, read-only in the app, as in compose.
    (down_mount,) = [m for m in downloader["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
    (app_mount,) = [m for m in app["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
    assert down_mount["name"] == app_mount["name"]
    assert app_mount.get("readOnly") is True and not down_mount.get("readOnly")
    assert "emptyDir" in named(spec["volumes"])[app_mount["name"]]
    assert downloader["command"] == ["python", "scripts/download_model.py"]
    assert downloader["image"] == app["image"] == project_image(project)


def test_grace_period_covers_the_services_shutdown(project: Path) -> None:
    defaults = settings_defaults(project)
    spec = service_spec(project)
    app = named(spec["containers"])["app"]
    # The pod runs with the settings' own defaults, and its grace period is built on them.
    graceful = float(env_value(app, "GRACEFUL_SHUTDOWN_S"))
    flush = float(env_value(app, "DB_SHUTDOWN_FLUSH_S"))
    assert graceful == defaults["GRACEFUL_SHUTDOWN_S"]
    assert flush == defaults["DB_SHUTDOWN_FLUSH_S"]
    (pause,) = re.findall(
        r"sleep\((\d+)\)", " ".join(app["lifecycle"]["preStop"]["exec"]["command"])
    )
    margin = spec["terminationGracePeriodSeconds"] - (int(pause) + graceful + flush)
    # The margin covers the last insert of the prediction log, and not much more.
    assert defaults["DB_WRITE_TIMEOUT_S"] <= margin <= 30
    # compose gives the same budget.
    stop = compose(project)["services"]["app"]["stop_grace_period"]
    assert spec["terminationGracePeriodSeconds"] == int(stop.removesuffix("s"))


def test_database_password_comes_from_a_secret(project: Path) -> None:
    app_env = compose(project)["services"]["app"]["environment"]
    spec = service_spec(project)
    app = named(spec["containers"])["app"]
    path = env_value(app, "DB_PASSWORD_FILE")
    assert path == app_env["DB_PASSWORD_FILE"]
    (mount,) = [m for m in app["volumeMounts"] if m["mountPath"] == path]
    assert mount["readOnly"] is True
    secret = named(spec["volumes"])[mount["name"]]["secret"]
    assert secret["secretName"] == f"{k8s_name(project)}-db"
    assert mount["subPath"] in [item["path"] for item in secret["items"]]
    assert "DB_PASSWORD" not in named(app["env"])


def _literal(value: Any) -> bool:
    """A value written in place, not a path to a mounted secret."""
    return isinstance(value, str | int) and not str(value).startswith("/run/secrets/")


def _password_literals(data: Any, where: str) -> Iterator[str]:
    """Places in parsed YAML where a password is written as a value."""
    if isinstance(data, dict):
        name = str(data.get("name", ""))
        if PASSWORD_KEY.search(name) and "value" in data and _literal(data["value"]):
            yield f"{where}: variable {name} = {data['value']!r}"
        for key, value in data.items():
            if PASSWORD_KEY.search(str(key)) and _literal(value):
                yield f"{where}: {key}: {value!r}"
            yield from _password_literals(value, where)
    elif isinstance(data, list):
        for item in data:
            yield from _password_literals(item, where)


def test_no_password_is_written(project: Path) -> None:
    secrets = [
        (project / "secrets" / n).read_text("utf-8").strip()
        for n in ("db_password.txt", "db_root_password.txt")
    ]
    assert all(len(s) >= 12 for s in secrets)
    files = [p for p in (project / K8S).rglob("*") if p.is_file()] + [
        project / "docs/kubernetes.md"
    ]
    found = []
    for path in files:
        text = path.read_text("utf-8")
        rel = str(path.relative_to(project))
        found += [f"{rel}: holds a password of secrets/" for s in secrets if s in text]
        if path.suffix == ".yaml":
            for doc in read_docs(path):
                found += list(_password_literals(doc, rel))
        if path.suffix == ".env":
            found += [
                f"{rel}: {ln}"
                for ln in text.splitlines()
                if PASSWORD_KEY.search(ln.split("=", 1)[0]) and not ln.startswith("#")
            ]
    assert found == []


def test_password_check_catches_a_literal() -> None:
    # The check above, shown to work: a literal password in a variable or a key.
    doc = {
        "env": [{"name": "DB_PASSWORD", "value": "hunter2hunter2"}],
        "stringData": {"db_password": "x"},
    }
    assert len(list(_password_literals(doc, "f"))) == 2
    safe = {"env": [{"name": "DB_PASSWORD_FILE", "value": "/run/secrets/db_password"}]}
    assert list(_password_literals(safe, "f")) == []


def test_accelerator_sets_the_gpu(project: Path, answers: dict[str, Any]) -> None:
    spec = service_spec(project)
    app = named(spec["containers"])["app"]
    resources = app["resources"]
    for _, pod in pod_specs(all_docs(project)):
        for container in containers(pod):
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), container["name"]
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), container["name"]
            if container is not app and container["name"] != "app":
                assert "nvidia.com/gpu" not in container["resources"]["limits"]
    if answers["accelerator"] == "cuda":
        assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == 1
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
            "tolerations"
        ]
    else:
        assert "nvidia.com/gpu" not in resources["requests"] | resources["limits"]
        assert "tolerations" not in spec
    # torch's threads follow the CPU limit.
    assert env_value(app, "TORCH_THREADS") == str(resources["limits"]["cpu"])


def test_docs_state_the_manifests_numbers(project: Path) -> None:
    doc = " ".join((project / "docs" / "kubernetes.md").read_text("utf-8").split())
    spec = service_spec(project)
    app = named(spec["containers"])["app"]
    startup, ready, live = (app[k] for k in ("startupProbe", "readinessProbe", "livenessProbe"))
    (pause,) = re.findall(
        r"sleep\((\d+)\)", " ".join(app["lifecycle"]["preStop"]["exec"]["command"])
    )
    grace = spec["terminationGracePeriodSeconds"]
    stop = compose(project)["services"]["app"]["stop_grace_period"]
    port = recorded(project)["api_port"]
    for text in (
        f"`stop_grace_period: {stop}` | `terminationGracePeriodSeconds: {grace}`",
        f"`/ready` every {startup['periodSeconds']} s, up to {startup['failureThreshold']} times",
        f"`/ready` every {ready['periodSeconds']} s",
        f"`/health` every {live['periodSeconds']} s",
        f"`preStop` waits {pause} s",
        f"(`GRACEFUL_SHUTDOWN_S`, {env_value(app, 'GRACEFUL_SHUTDOWN_S')} s)",
        f"(`DB_SHUTDOWN_FLUSH_S`, {env_value(app, 'DB_SHUTDOWN_FLUSH_S')} s)",
        f"the exit: {grace} s",
        f"`containerPort: {port}`",
        f"Kubernetes {' and '.join(KUBERNETES_VERSIONS)}",
    ):
        assert text in doc, f"docs/kubernetes.md does not say: {text}"
