"""Download the model file: verified, atomic, retried, idempotent. Standard library only.

    MODEL_URL=https://example.org/model.pt MODEL_SHA256=<hex> python scripts/download_model.py

Settings come from flags or the environment (flags win): ``--url``/``MODEL_URL``
(http, https or file), ``--sha256``/``MODEL_SHA256``, or ``--sha256-url``/
``MODEL_SHA256_URL`` (where to read it: a checksum file as ``sha256sum`` writes it,
published beside the model as many model hosts do),
``--out``/``MODEL_PATH`` (default /models/{{ cookiecutter.model_format | model_file }}). ``--env-file .env`` reads
``KEY=VALUE`` lines too (the variables of the environment win, as with compose). The
sha256 is required; ``--insecure-skip-verify`` (or ``MODEL_INSECURE_SKIP_VERIFY=true``)
turns the check off, with a warning.

The file is written to a temporary name in the target folder, fsynced, checked and
renamed into place, so the final name only ever holds a complete, verified file. A
file already there with the right sha256 is not fetched again. Connection errors,
timeouts, truncated transfers and 5xx answers are retried with exponential backoff
and jitter; 4xx answers are not.

Exit codes:
  0  the file is in place and verified
  2  bad arguments or settings
  3  checksum mismatch (nothing is left under the final name)
  4  not found (HTTP 404/410, or a missing file: URL)
  5  network failure: retries exhausted on connection errors, timeouts or 5xx
  6  refused by the server (another 4xx, e.g. 401 or 403)
  7  local I/O error (the target folder is missing or not writable, disk full)
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import os
import random
import re
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_CHECKSUM = 3
EXIT_NOT_FOUND = 4
EXIT_NETWORK = 5
EXIT_REFUSED = 6
EXIT_IO = 7

CHUNK = 1024 * 1024
DEFAULT_OUT = "/models/{{ cookiecutter.model_format | model_file }}"
USER_AGENT = "model-downloader/1.0"
_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_TRUE = ("1", "true", "yes", "on")


class DownloadError(Exception):
    """A failure with its exit code; ``str()`` is one line for the log."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class RetryableError(Exception):
    """A failure that another attempt may fix (network, timeout, 5xx, truncation)."""


def log(message: str) -> None:
    """One line on stdout, flushed at once (container logs are line based)."""
    print(message, flush=True)


def redact(url: str) -> str:
    """The URL without credentials, query or fragment (signed URLs hold secrets)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    query = "?..." if parts.query else ""
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", "")) + query


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover - loop always returns


class Progress:
    """Prints a progress line at most every ``interval`` seconds, and at the end."""

    def __init__(self, total: int | None, interval: float = 2.0) -> None:
        self.total = total
        self.interval = interval
        self.start = time.monotonic()
        self.last = self.start
        self.done = 0

    def update(self, n: int) -> None:
        """Account for ``n`` more bytes."""
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self.report()

    def report(self) -> None:
        """Print one line: bytes so far, percentage, rate."""
        elapsed = max(time.monotonic() - self.start, 1e-6)
        rate = _human(self.done / elapsed)
        if self.total:
            pct = 100 * self.done / self.total
            log(f"progress {_human(self.done)} of {_human(self.total)} ({pct:.0f}%) at {rate}/s")
        else:
            log(f"progress {_human(self.done)} at {rate}/s")


class _NoCredentialLeakRedirect(urllib.request.HTTPRedirectHandler):
    """Follows redirects, but drops basic-auth credentials when the host changes."""

    def redirect_request(  # type: ignore[override]
        self,
        req: urllib.request.Request,
        fp: BinaryIO,
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        """The follow-up request, without Authorization across hosts."""
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        old_host = urllib.parse.urlsplit(req.full_url).hostname
        if new is not None and urllib.parse.urlsplit(newurl).hostname != old_host:
            new.remove_header("Authorization")
        return new


_OPENER = urllib.request.build_opener(_NoCredentialLeakRedirect)


def _open(url: str, timeout: float) -> tuple[BinaryIO, int | None]:
    """Open the URL; map failures to DownloadError (final) or RetryableError."""
    headers = {"User-Agent": USER_AGENT}
    parts = urllib.parse.urlsplit(url)
    if parts.username is not None:
        # user:password@host in the URL becomes HTTP basic auth (urllib would take it
        # for part of the host name).
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
        netloc = parts.hostname or ""
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
        url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    # The scheme was checked in parse_args: http, https or file only.
    request = urllib.request.Request(url, headers=headers)  # noqa: S310
    try:
        response = _OPENER.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code in (404, 410):
            raise DownloadError(f"not found: HTTP {exc.code}", EXIT_NOT_FOUND) from None
        if 500 <= exc.code <= 599:
            raise RetryableError(f"HTTP {exc.code}") from None
        raise DownloadError(f"refused: HTTP {exc.code} {exc.reason}", EXIT_REFUSED) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, FileNotFoundError):
            raise DownloadError("not found: no such file", EXIT_NOT_FOUND) from None
        if isinstance(reason, PermissionError):
            raise DownloadError("refused: permission denied", EXIT_REFUSED) from None
        if isinstance(reason, ssl.SSLCertVerificationError):
            # Retrying cannot fix an untrusted certificate; say so at once.
            raise DownloadError(f"TLS certificate not trusted: {reason}", EXIT_NETWORK) from None
        raise RetryableError(f"connection failed: {reason}") from None
    except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
        raise RetryableError(f"connection failed: {type(exc).__name__}: {exc}") from None
    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    return response, total


def fetch_once(url: str, target: Path, timeout: float) -> tuple[Path, str]:
    """One attempt: stream into a temporary file beside ``target``; return it and its sha256.

    The temporary file is removed on any failure.
    """
    response, total = _open(url, timeout)
    try:
        fd, tmp_name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".part"
        )
    except OSError as exc:
        response.close()
        raise DownloadError(f"cannot write to {target.parent}: {exc.strerror}", EXIT_IO) from None
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    progress = Progress(total)
    try:
        with response, os.fdopen(fd, "wb") as out:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
                    raise RetryableError(
                        f"transfer interrupted after {progress.done} bytes: {type(exc).__name__}"
                    ) from None
                if not chunk:
                    break
                try:
                    out.write(chunk)
                except OSError as exc:
                    raise DownloadError(f"cannot write {tmp}: {exc.strerror}", EXIT_IO) from None
                digest.update(chunk)
                progress.update(len(chunk))
            if total is not None and progress.done != total:
                raise RetryableError(f"transfer interrupted: got {progress.done} of {total} bytes")
            out.flush()
            os.fsync(out.fileno())
        progress.report()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, digest.hexdigest()


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (the directory entry must reach the disk too)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - some file systems refuse to open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def download(
    url: str,
    target: Path,
    expected: str | None,
    *,
    retries: int = 5,
    timeout: float = 30.0,
    backoff: float = 1.0,
    max_backoff: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Put a verified copy of ``url`` at ``target``; return its sha256 or raise DownloadError."""
    expected = expected.lower() if expected else None
    if not target.parent.is_dir():
        raise DownloadError(f"target folder {target.parent} does not exist", EXIT_IO)
    if expected and target.is_file():
        try:
            present = sha256_file(target)
        except OSError as exc:
            raise DownloadError(f"cannot read {target}: {exc.strerror}", EXIT_IO) from None
        if present == expected:
            log(f"up to date: {target} already has sha256 {expected}")
            return present
        log(f"replacing {target}: its sha256 is {present}, expected {expected}")
    attempt = 0
    while True:
        attempt += 1
        log(f"downloading {redact(url)} -> {target} (attempt {attempt} of {retries + 1})")
        try:
            tmp, actual = fetch_once(url, target, timeout)
            break
        except RetryableError as exc:
            if attempt > retries:
                raise DownloadError(
                    f"network failure after {attempt} attempts: {exc}", EXIT_NETWORK
                ) from None
            # Full jitter: spreads many downloaders retrying against one server.
            # Ref: https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
            delay = random.uniform(0, min(max_backoff, backoff * 2 ** (attempt - 1)))  # noqa: S311
            log(f"attempt {attempt} failed ({exc}); retrying in {delay:.1f} s")
            sleep(delay)
    if expected and actual != expected:
        tmp.unlink(missing_ok=True)
        raise DownloadError(
            f"checksum mismatch: downloaded sha256 {actual}, expected {expected}", EXIT_CHECKSUM
        )
    try:
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DownloadError(
            f"cannot move the file into {target}: {exc.strerror}", EXIT_IO
        ) from None
    _fsync_dir(target.parent)
    log(f"saved {target} ({target.stat().st_size} bytes, sha256 {actual})")
    return actual


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a .env file: comments, blank lines and ``export`` allowed.

    A value may be quoted with ' or "; nothing is interpolated (compose's own rules for
    the plain cases this project's .env.example uses).
    """
    values = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.removeprefix("export ").split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _env(argv: list[str] | None) -> dict[str, str]:
    """The environment, over the values of ``--env-file`` when one is given."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--env-file", type=Path)
    known, _ = pre.parse_known_args(argv)
    if known.env_file is None:
        return dict(os.environ)
    try:
        from_file = read_env_file(known.env_file)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read --env-file {known.env_file}: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    return {**from_file, **os.environ}


def fetch_sha256(url: str, *, retries: int, timeout: float, backoff: float) -> str:
    """The first word of the checksum file at ``url`` (``sha256sum`` writes ``<hex>  <name>``).

    Retried like the model itself; a checksum file is small, so it is read in one go.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            response, _ = _open(url, timeout)
            with response:
                words = response.read(4096).decode("utf-8", "replace").split()
            break
        except RetryableError as exc:
            if attempt > retries:
                raise DownloadError(
                    f"cannot read the sha256 from {redact(url)}: {exc}", EXIT_NETWORK
                ) from None
            time.sleep(random.uniform(0, backoff * 2 ** (attempt - 1)))  # noqa: S311
        except OSError as exc:  # the connection broke while reading
            reason = f"cannot read the sha256 from {redact(url)}: {exc}"
            raise DownloadError(reason, EXIT_NETWORK) from None
    if not words or not _SHA256_RE.match(words[0]):
        raise DownloadError(f"{redact(url)} holds no sha256", EXIT_USAGE)
    log(f"expected sha256 {words[0].lower()} (from {redact(url)})")
    return words[0]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Flags over environment; exits 2 with one line on bad input."""
    env = _env(argv)
    parser = argparse.ArgumentParser(
        description="Download a model file, verified by sha256, atomically.",
        epilog=__doc__[__doc__.index("Exit codes:") :],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", default=env.get("MODEL_URL"), help="http(s):// or file:// URL")
    parser.add_argument("--sha256", default=env.get("MODEL_SHA256") or None, help="expected hex")
    parser.add_argument(
        "--sha256-url",
        default=env.get("MODEL_SHA256_URL") or None,
        help="where to read the expected hex (when --sha256 is not given)",
    )
    parser.add_argument("--out", type=Path, default=Path(env.get("MODEL_PATH") or DEFAULT_OUT))
    parser.add_argument("--env-file", type=Path, help="also read KEY=VALUE lines from this file")
    parser.add_argument(
        "--insecure-skip-verify",
        action="store_true",
        default=env.get("MODEL_INSECURE_SKIP_VERIFY", "").lower() in _TRUE,
        help="do not check the sha256 (unsafe: any file, even a tampered one, is accepted)",
    )
    parser.add_argument("--retries", type=int, default=5, help="retries after the first try")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per socket wait")
    parser.add_argument("--backoff", type=float, default=1.0, help="first retry delay cap (s)")
    parser.add_argument("--max-backoff", type=float, default=30.0, help="largest retry delay")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("no URL: set MODEL_URL or pass --url")
    scheme = urllib.parse.urlsplit(args.url).scheme.lower()
    if scheme not in ("http", "https", "file"):
        parser.error(f"unsupported URL scheme {scheme or '(none)'!r}: use http, https or file")
    if args.sha256 and not _SHA256_RE.match(args.sha256.strip()):
        parser.error("the sha256 must be 64 hexadecimal characters")
    if args.sha256_url and urllib.parse.urlsplit(args.sha256_url).scheme.lower() not in (
        "http",
        "https",
        "file",
    ):
        parser.error("the sha256 URL must be http, https or file")
    if not (args.sha256 or args.sha256_url) and not args.insecure_skip_verify:
        parser.error(
            "no sha256: set MODEL_SHA256 (or MODEL_SHA256_URL) or pass --sha256"
            " (or --insecure-skip-verify)"
        )
    if args.retries < 0 or args.timeout <= 0 or args.backoff < 0 or args.max_backoff < 0:
        parser.error("--retries, --timeout and the backoffs must not be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the download; return the documented exit code."""
    args = parse_args(argv)
    if args.insecure_skip_verify:
        log("WARNING: sha256 verification is OFF (--insecure-skip-verify): the file is not checked")
    try:
        expected = None
        if args.sha256 and not args.insecure_skip_verify:
            expected = args.sha256.strip()
        elif not args.insecure_skip_verify:
            expected = fetch_sha256(
                args.sha256_url, retries=args.retries, timeout=args.timeout, backoff=args.backoff
            )
        download(
            args.url,
            args.out,
            expected,
            retries=args.retries,
            timeout=args.timeout,
            backoff=args.backoff,
            max_backoff=args.max_backoff,
        )
    except DownloadError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return exc.code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
