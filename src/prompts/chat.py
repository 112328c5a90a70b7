"""The HTTP client of OpenAI-compatible chat-completions servers (vLLM, Ollama, OpenAI) that the
prompt backends (:mod:`src.prompts.backends`) caption and refine with, and their error type.

Secrets: an API key is read only from the environment variable *named* by ``api_key_env``; it is
sent in the ``Authorization`` header and nowhere else, and every error message is redacted.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from src.utils.cli import UserError

log = logging.getLogger(__name__)

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class BackendError(UserError, RuntimeError):
    """A failed caption/refinement. ``fatal``: retrying or carrying on with other clips cannot help
    (bad key, bad model name, missing weights); the run stops at once. Otherwise only this clip
    failed (retries exhausted) and a rerun fills the gap."""

    def __init__(self, message: str, fatal: bool = False):
        super().__init__(message)
        self.fatal = fatal


def one_line(text: str) -> str:
    """Collapse whitespace (prompt files are line-aligned: a reply must never add a line) and strip
    quotes a chat model may wrap its answer in."""
    text = " ".join(str(text).split())
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        text = text[1:-1].strip()
    return text


# ----------------------------------------------------------------------------------------------
# HTTP client of OpenAI-compatible chat-completions servers
# ----------------------------------------------------------------------------------------------
def read_api_key(api_key_env: str | None, role: str) -> str | None:
    """The key in the environment variable named ``api_key_env`` (None when the setting is null).
    The setting's value is echoed in errors only when it looks like a variable name, so a key
    pasted there by mistake is never printed."""
    if not api_key_env:
        return None
    if not ENV_NAME.match(str(api_key_env)):
        raise BackendError(
            f"{role}.api_key_env must be the NAME of an environment variable holding the key "
            "(letters, digits, _), not the key itself",
            fatal=True,
        )
    key = os.environ.get(str(api_key_env), "").strip()
    if not key:
        raise BackendError(
            f"{role}.api_key_env={api_key_env} but that environment variable is not set "
            f"(export {api_key_env}=..., or set {role}.api_key_env=null for a server without auth)",
            fatal=True,
        )
    return key


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ChatClient:
    """POST ``{base_url}/chat/completions`` with retries.

    Retried, with exponential backoff ``backoff_s * 2**attempt`` (no jitter: runs are reproducible
    and the concurrency is small): HTTP 429 and 5xx (a ``Retry-After`` in seconds wins, capped at
    ``max_retry_after_s``), timeouts and connection errors. Not retried: any other 4xx, which raise
    a fatal :class:`BackendError` naming the status and the server's message. ``retries`` counts
    the extra attempts after the first. Retries exhausted: a :class:`BackendError` for this clip
    only, except when the last attempt could not connect at all (fatal: the server is down).
    ``requests`` counts every HTTP attempt (thread-safe).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        timeout_s: float = 60.0,
        retries: int = 4,
        backoff_s: float = 1.0,
        max_retry_after_s: float = 30.0,
        role: str = "captioner",
    ):
        if not base_url or not model:
            raise BackendError(f"{role}.base_url and {role}.model must be set", fatal=True)
        self.url = str(base_url).rstrip("/") + "/chat/completions"
        self.model = str(model)
        self.timeout_s, self.retries = float(timeout_s), max(0, int(retries))
        self.backoff_s, self.max_retry_after_s = float(backoff_s), float(max_retry_after_s)
        self.role = role
        self._key = read_api_key(api_key_env, role)
        # A local server must not be reached through a proxy from the environment.
        handlers = [urllib.request.ProxyHandler({})] if _is_loopback(self.url) else []
        self._opener = urllib.request.build_opener(*handlers)
        self._count_lock = threading.Lock()
        self.requests = 0

    def __repr__(self) -> str:  # never shows the key
        return f"ChatClient({self.url!r}, model={self.model!r}, auth={'yes' if self._key else 'no'})"

    def redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def complete(self, messages: list[dict], max_tokens: int) -> str:
        """The first choice's message text (one line)."""
        body = json.dumps(
            {"model": self.model, "messages": messages, "max_tokens": int(max_tokens), "temperature": 0}
        ).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        last, unreachable = "", False
        for attempt in range(self.retries + 1):
            with self._count_lock:
                self.requests += 1
            wait = self.backoff_s * 2**attempt
            try:
                request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
                with self._opener.open(request, timeout=self.timeout_s) as response:
                    payload = response.read()
                return self._parse(payload)
            except urllib.error.HTTPError as err:
                message = self._error_message(err)
                if err.code != 429 and err.code < 500:
                    hint = " (check the key in the environment variable named by api_key_env)"
                    raise BackendError(
                        f"{self.role} {self.url} answered HTTP {err.code}: {message}"
                        + (hint if err.code in (401, 403) else ""),
                        fatal=True,
                    ) from None
                last, unreachable = f"HTTP {err.code}: {message}", False
                retry_after = _retry_after_s(err.headers.get("Retry-After") if err.headers else None)
                if retry_after is not None:
                    wait = min(retry_after, self.max_retry_after_s)
            except (TimeoutError, urllib.error.URLError, ConnectionError, http.client.HTTPException) as err:
                reason = getattr(err, "reason", err)
                if isinstance(reason, TimeoutError) or isinstance(err, TimeoutError):
                    last, unreachable = f"no answer within timeout_s={self.timeout_s:g}", False
                else:
                    last, unreachable = f"connection failed ({self.redact(str(reason))})", True
            if attempt < self.retries:
                log.debug("%s: %s; retry %d/%d in %.2fs", self.url, last, attempt + 1, self.retries, wait)
                time.sleep(wait)
        # A server still unreachable after every retry is down for all clips, not for this one.
        raise BackendError(
            f"{self.role} {self.url}: {last} (gave up after {self.retries + 1} attempts)", fatal=unreachable
        )

    def _error_message(self, err: urllib.error.HTTPError) -> str:
        try:
            raw = err.read(4000).decode("utf-8", "replace")
        except Exception:  # the body is only decoration of the status; never mask the status
            raw = ""
        message = raw
        try:
            data = json.loads(raw)
            error = data.get("error", data) if isinstance(data, dict) else data
            message = error.get("message", raw) if isinstance(error, dict) else str(error)
        except (json.JSONDecodeError, AttributeError):
            pass
        return self.redact(" ".join(str(message).split())[:500]) or err.reason or "(no message)"

    def _parse(self, payload: bytes) -> str:
        try:
            content = json.loads(payload)["choices"][0]["message"]["content"]
        except (json.JSONDecodeError, KeyError, IndexError, TypeError):
            raise BackendError(
                f"{self.role} {self.url}: not a chat-completions answer: {self.redact(payload[:200].decode('utf-8', 'replace'))!r}"
            ) from None
        if isinstance(content, list):  # some servers answer with content parts
            content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
        text = one_line(content or "")
        if not text:
            raise BackendError(f"{self.role} {self.url}: empty answer")
        return text


def _retry_after_s(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is ignored: backoff applies instead)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def client_from_config(cfg: dict, settings: dict, role: str) -> ChatClient:
    return ChatClient(
        base_url=cfg.get("base_url"),
        model=cfg.get("model"),
        api_key_env=cfg.get("api_key_env"),
        timeout_s=settings.get("timeout_s", 60),
        retries=settings.get("retries", 4),
        backoff_s=settings.get("backoff_s", 1.0),
        max_retry_after_s=settings.get("max_retry_after_s", 30),
        role=role,
    )


# ----------------------------------------------------------------------------------------------
# Captioners
# ----------------------------------------------------------------------------------------------
