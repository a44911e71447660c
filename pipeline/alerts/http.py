"""One HTTP request to a channel, retried within the run the way receivers ask: a 5xx, a timeout or a refused
connection after a doubling backoff, a 429 after its `Retry-After` (capped); a 4xx is final until the config
changes. Every error text is scrubbed of the secrets in play before anyone sees it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from pipeline.alerts.channels import Request
from pipeline.alerts.rules import Delivery
from pipeline.core.redact import MASK, redact


@dataclass(frozen=True)
class Answer:
    """How a request ended: accepted (2xx), or failed and whether that is final (4xx)."""

    ok: bool
    status: int | None
    error: str | None
    final: bool
    attempts: int
    data: object = None


def scrub(text: str, secrets: list[str]) -> str:
    """No secret in play reaches an error, a log or the warehouse: masked verbatim, then redacted by shape."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return redact(text)


def _retry_after(response: httpx.Response, cap: float, fallback: float) -> float:
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return min(fallback, cap)
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            seconds = fallback
    return max(0.0, min(seconds, cap))


def _first_line(response: httpx.Response) -> str:
    text = response.text.strip()
    return text.splitlines()[0][:200] if text else response.reason_phrase


def send(client: httpx.Client, req: Request, cfg: Delivery, secrets: list[str],
         sleep: Callable[[float], None] = time.sleep) -> Answer:
    """Send `req`, retrying transient failures within the run; never raises for the network."""
    status: int | None = None
    error = ""
    headers = {"Content-Type": "application/json", "User-Agent": "migrate-lens", **req.headers}
    for attempt in range(cfg.retries + 1):
        wait = cfg.backoff_seconds * 2 ** attempt
        try:
            response = client.request(req.method, req.url, headers=headers,
                                      content=req.content() if req.body is not None else None)
        except httpx.TimeoutException:
            status, error = None, f"timed out after {cfg.timeout_seconds:g} s"
        except httpx.HTTPError as e:  # refused, reset, DNS, TLS: the receiver may be back next run
            status, error = None, scrub(f"{type(e).__name__}: {e}", secrets)[:300]
        else:
            status = response.status_code
            if 200 <= status < 300:
                try:
                    data = response.json() if response.content else None
                except ValueError:
                    data = None
                return Answer(True, status, None, False, attempt + 1, data)
            error = scrub(f"HTTP {status}: {_first_line(response)}", secrets)[:300]
            if status == 429:
                wait = _retry_after(response, cfg.max_retry_after_seconds, wait)
            elif status < 500:
                return Answer(False, status, error, True, attempt + 1)
        if attempt < cfg.retries:
            sleep(wait)
    return Answer(False, status, error, False, cfg.retries + 1)
