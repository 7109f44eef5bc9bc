"""The generated proxy configuration, for every variant: HAProxy accepts it, and its
limits are the service's.

``haproxy -c`` runs in the HAProxy stand-in image (Debian's 2.6, the oldest branch the
file must suit; the default image is 3.0), with the file mounted where compose mounts
it. The limits are read from the rendered file and compared with the settings'
defaults in the rendered ``settings.py``, so a change to one without the other fails.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from container_helpers import render

CFG_IN_IMAGE = "/usr/local/etc/haproxy/haproxy.cfg"


@pytest.mark.docker
def test_haproxy_accepts_the_config(
    project: Path, docker_client: Any, standin_images: dict[str, str]
) -> None:
    cfg = project / "proxy" / "haproxy.cfg"
    output = docker_client.containers.run(
        standin_images["haproxy"],
        ["-c", "-f", CFG_IN_IMAGE],
        volumes={str(cfg): {"bind": CFG_IN_IMAGE, "mode": "ro"}},
        remove=True,
        stdout=True,
        stderr=True,
        network_disabled=True,
        labels={"org.servegen.test": "proxy-config"},
    ).decode("utf-8", "replace")
    assert "Configuration file is valid" in output, output
    assert "[WARNING]" not in output and "[ALERT]" not in output, output


def _settings_default(project: Path, field: str) -> float:
    """The default of one field of the rendered settings (``name: int = Field(10, ...)``)."""
    (package,) = (p for p in (project / "src").iterdir() if p.is_dir())
    text = (package / "settings.py").read_text(encoding="utf-8")
    match = re.search(rf"^\s+{field}: [^=]+= Field\(\s*([\d_]+)", text, re.MULTILINE)
    assert match, f"{field} not found in settings.py"
    return float(match[1].replace("_", ""))


def _directive(cfg: str, pattern: str) -> str:
    match = re.search(rf"^\s+{pattern}$", cfg, re.MULTILINE)
    assert match, pattern
    return match[1]


def test_proxy_limits_are_the_services(project: Path, variant: dict[str, Any]) -> None:
    cfg = (project / "proxy" / "haproxy.cfg").read_text(encoding="utf-8")

    def default(field: str) -> int:
        return int(_settings_default(project, field))

    # The head the proxy forwards, with its two added header lines, fits the app's limits.
    bufsize = int(_directive(cfg, r"tune\.bufsize (\d+)"))
    maxrewrite = int(_directive(cfg, r"tune\.maxrewrite (\d+)"))
    assert bufsize == default("max_head_bytes") and 0 < maxrewrite < bufsize
    assert int(_directive(cfg, r"tune\.http\.maxhdr (\d+)")) == default("max_headers") - 2
    assert _directive(cfg, r"timeout http-request (\S+)") == f"{default('head_timeout_s')}s"
    assert _directive(cfg, r"timeout client (\S+)") == f"{default('body_timeout_s')}s"
    keep_alive = _directive(cfg, r"timeout http-keep-alive (\d+)s")
    assert int(keep_alive) < default("keep_alive_s")
    assert _directive(cfg, r"default-server .*maxconn (\d+)") == str(default("max_connections"))
    max_body = default("max_body_bytes")
    assert f"gt {max_body} }}" in cfg and f"at most {max_body} bytes" in cfg
    assert (max_body == 8_388_608) is (variant.get("task") == "image-classification")
    # Only a connection that failed is tried again: never a request the app received.
    assert _directive(cfg, r"retry-on (.+)") == "conn-failure"
    port = variant.get("api_port", "8000")
    assert _directive(cfg, r"bind (\S+)") == f":{port}"
    assert re.search(rf"server-template app \d+ app:{port} .*init-addr none", cfg)
    # The request id rule is the middleware's.
    (package,) = (p for p in (project / "src").iterdir() if p.is_dir())
    middleware = (package / "middleware.py").read_text(encoding="utf-8")
    rule = re.search(r'_VALID_ID = re\.compile\(r"(.+)"\)', middleware)
    assert rule and f"-m reg {rule[1]}" in cfg


@pytest.mark.parametrize("api_port", ["8000", "8405"])
def test_the_proxys_monitor_port_is_never_the_services(api_port: str, tmp_path: Path) -> None:
    project = render({"api_port": api_port}, tmp_path)
    cfg = (project / "proxy" / "haproxy.cfg").read_text(encoding="utf-8")
    binds = re.findall(r"^\s+bind (\S+)$", cfg, re.MULTILINE)
    assert binds[0] == f":{api_port}"
    (monitor,) = binds[1:]
    monitor_port = monitor.rsplit(":", 1)[1]
    assert monitor.startswith("127.0.0.1:") and monitor_port != api_port
    # The proxy's health check in compose.yaml asks that port.
    compose = (project / "compose.yaml").read_text(encoding="utf-8")
    assert f"/dev/tcp/127.0.0.1/{monitor_port}\n" in compose
