"""The one place that speaks to SendGrid's v3 API, through the sendgrid package.

Mail Send, batch ids and cancelling scheduled sends (for sending), the
suppression lists (for ``newsletter subscribers sync``) and category statistics
(for ``newsletter report`` when no webhook events arrived). Every failure comes out
as a :class:`~.problems.DeliveryProblem` that says what to do
next; the API key is never shown.

Only the package's public interface is used: ``SendGridAPIClient(key, host=...)``,
then ``.client.<segment>...<verb>(request_body=..., query_params=..., timeout=...)``.
"""

from __future__ import annotations

import http.client
import logging
import os
import threading
import urllib.error
from collections.abc import Callable
from typing import Any

from python_http_client.exceptions import HTTPError

from ..errors import NewsletterError
from . import _json
from .problems import API_KEY_ENV, Ambiguous, Retryable, classify

API_HOST_ENV = "SENDGRID_API_HOST"
DEFAULT_API_HOST = "https://api.sendgrid.com"
SUPPRESSION_LISTS = ("bounces", "spam_reports", "unsubscribes")

# python_http_client logs every request's headers (the API key) and body (every
# address) at DEBUG; never let that reach a log, whatever the root logger's level.
logging.getLogger("python_http_client.client").setLevel(logging.INFO)


def api_key_from_env(
    needed_by: str = "The sendgrid transport",
    permission: str = "Mail Send",
    alternative: str = "; or use --transport outbox to write .eml files instead",
) -> str:
    """SENDGRID_API_KEY, or a clear error (the key itself is never shown)."""
    key = os.environ.get(API_KEY_ENV, "").strip()
    if not key:
        raise NewsletterError(
            f"{needed_by} needs an API key in {API_KEY_ENV}, and it is not set.",
            hint=f"Create a key with the '{permission}' permission in SendGrid (Settings → "
            f"API Keys), then `export {API_KEY_ENV}=...`{alternative}.",
        )
    return key


class SendGridClient:
    """SendGrid's v3 API for this project: one sendgrid client per thread.

    python_http_client keeps request headers in one mutable dict shared by every
    client built from a SendGridAPIClient, so threads never share a client.
    ``host`` defaults to SENDGRID_API_HOST, then SendGrid's own.
    """

    def __init__(self, api_key: str, host: str | None = None, timeout: float = 30.0) -> None:
        self._key = api_key
        self.host = (host or os.environ.get(API_HOST_ENV) or DEFAULT_API_HOST).rstrip("/")
        self.timeout = timeout if timeout and timeout > 0 else 30.0
        self._local = threading.local()

    def __repr__(self) -> str:  # never show the key
        return f"SendGridClient(host={self.host!r}, timeout={self.timeout:g})"

    def _api(self) -> Any:
        """This thread's python_http_client root (``/v3``)."""
        client = getattr(self._local, "client", None)
        if client is None:
            # Imported here to save start-up time: the sendgrid package pulls in its
            # mail helpers, which commands that never send do not need.
            from sendgrid import SendGridAPIClient

            client = SendGridAPIClient(self._key, host=self.host).client
            self._local.client = client
        return client

    def _call(self, request: Callable[..., Any], **arguments: Any) -> Any:
        """Make one request; its python_http_client Response, or a DeliveryProblem."""
        try:
            return request(timeout=self.timeout, **arguments)
        except HTTPError as exc:
            raise classify(int(exc.status_code or 0), exc.body, exc.headers) from None
        except TimeoutError:
            raise Ambiguous(
                f"no answer from {self.host} within {self.timeout:g} s; the request may have "
                "been accepted"
            ) from None
        except urllib.error.URLError as exc:
            # urllib wraps errors raised while connecting or sending: the request never
            # arrived whole, so sending it again cannot deliver it twice.
            raise Retryable(f"cannot reach {self.host}: {exc.reason}") from None
        except (http.client.HTTPException, ConnectionError, OSError) as exc:
            # The request went out whole and the connection broke while waiting for the
            # answer: SendGrid may have accepted it, exactly as after a timeout.
            raise Ambiguous(
                f"the connection to {self.host} broke before SendGrid answered "
                f"({type(exc).__name__}); the request may have been accepted"
            ) from None

    def _json(self, request: Callable[..., Any], what: str, **arguments: Any) -> Any:
        response = self._call(request, **arguments)
        try:
            return _json.loads(response.body or b"")
        except ValueError:
            raise Retryable(f"{what} answered with something that is not JSON") from None

    # --- sending -------------------------------------------------------------------------

    def mail_send(self, body: dict[str, Any]) -> None:
        """POST /v3/mail/send; returns when SendGrid accepted it."""
        self._call(self._api().mail.send.post, request_body=body)

    def create_batch_id(self) -> str:
        """POST /v3/mail/batch: a new batch id for a scheduled send."""
        data = self._json(self._api().mail.batch.post, "POST /v3/mail/batch")
        if not isinstance(data, dict) or not data.get("batch_id"):
            raise NewsletterError(
                "SendGrid answered POST /v3/mail/batch without a batch_id.",
                hint="Try again in a minute; if it persists, schedule without --at.",
            )
        return str(data["batch_id"])

    def cancel_scheduled(self, batch_id: str) -> None:
        """POST /v3/user/scheduled_sends: cancel the scheduled send ``batch_id``."""
        self._call(self._api().user.scheduled_sends.post,
                   request_body={"batch_id": batch_id, "status": "cancel"})

    # --- suppressions --------------------------------------------------------------------

    def suppressions(self, kind: str, query: dict[str, Any]) -> Any:
        """GET /v3/suppression/{kind} (bounces, spam_reports, unsubscribes) as JSON."""
        if kind not in SUPPRESSION_LISTS:
            raise ValueError(f"unknown suppression list {kind!r}")
        return self._json(self._api().suppression._(kind).get,
                          f"GET /v3/suppression/{kind}", query_params=query)

    def group_suppressions(self, group_id: int) -> Any:
        """GET /v3/asm/groups/{group_id}/suppressions as JSON."""
        return self._json(self._api().asm.groups._(str(int(group_id))).suppressions.get,
                          "GET /v3/asm/groups/{id}/suppressions")

    # --- statistics ----------------------------------------------------------------------

    def category_stats(self, categories: list[str], start_date: str,
                       end_date: str | None = None) -> Any:
        """GET /v3/categories/stats: daily totals (not unique readers) per category, as JSON.

        Dates are ``YYYY-MM-DD``; at most 10 categories, each sent as its own parameter.
        """
        query: dict[str, Any] = {"start_date": start_date, "categories": list(categories)[:10],
                                 "aggregated_by": "day"}
        if end_date:
            query["end_date"] = end_date
        return self._json(self._api().categories.stats.get, "GET /v3/categories/stats",
                          query_params=query)

    def close(self) -> None:
        """Forget this object's clients (python_http_client keeps no connections open)."""
        self._local = threading.local()
