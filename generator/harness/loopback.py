"""HTTP to a service published on this machine's loopback interface, and nowhere else.

The harness's probes and its readiness wait, and the benchmarks (through their
adapter), reach the app under test through :func:`request`. It refuses any address but
loopback, ignores the environment's proxy settings (a proxy cannot reach our
127.0.0.1), and returns an error status as an answer like any other: only "nothing
answered" is an exception.
"""

from __future__ import annotations

import http.client
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

#: No proxy handler: requests go straight to the address in the URL.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class NoAnswer(Exception):  # noqa: N818 - says what happened, like the harness's errors
    """Nothing answered HTTP at the address (not listening yet, reset, timed out).

    ``reason`` is the underlying error, as urllib reported it.
    """

    def __init__(self, url: str, reason: BaseException) -> None:
        super().__init__(f"{url} got no answer ({reason})")
        self.url = url
        self.reason = reason


def request(
    url: str,
    body: bytes | None = None,
    timeout: float = 5.0,
    content_type: str = "application/json",
) -> tuple[int, bytes]:
    """GET ``url``, or POST ``body`` to it (as JSON by default); return status and body.

    Raises :class:`NoAnswer` when nothing answers, ValueError for a URL off loopback.
    """
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS:
        raise ValueError(f"only http:// URLs on loopback are allowed, got {url!r}")
    headers = {"Content-Type": content_type} if body is not None else {}
    outgoing = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 - checked above
    try:
        with _OPENER.open(outgoing, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
        raise NoAnswer(url, exc) from None


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that nothing listens on right now.

    The kernel picks it (bind to port 0); it stays free only until someone else takes
    it, so ask for it just before it is used.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
