"""The sign-up form for other websites (WordPress, a static site): a snippet to paste.

Design (docs/web-service.md, "A sign-up form on your own website"): the snippet is
plain HTML (no script, nothing fetched at runtime) posting straight to
``/subscribe/SLUG``. Our usual form's CSRF cookie cannot work from another site, so an
embedded post is accepted instead when:

- the browser's ``Origin`` is one of ``[web] allowed_origins`` in newsletter.toml
  (browsers always send it on a cross-site POST, and a page cannot forge it);
- it carries the snippet's ``embed_token``: the list and an expiry a year after the
  snippet was made, signed with the project's secret (re-run the command to renew);
- the hidden "website" field (the honeypot) is empty;
- the rate limits per network and per inbox allow it;

and it is always double opt-in: nothing is sent but a confirmation link, whatever the
list's setting, so a stranger can at most cause one "please confirm" email per inbox.
"""

from __future__ import annotations

from markupsafe import escape
from starlette.requests import Request

from ..tokens import BadToken, sign, verify

EMBED_FIELD = "embed_token"
EMBED_PURPOSE = "embed"
EMBED_MAX_AGE = 366 * 86400  # a year: re-run `newsletter lists embed` to renew


def embed_token(secret: bytes, slug: str) -> str:
    """The signed token of a snippet for list ``slug`` (valid for a year)."""
    return sign(secret, EMBED_PURPOSE, {"l": slug}, max_age=EMBED_MAX_AGE)


def embed_token_ok(secret: bytes, token: str, slug: str) -> bool:
    """True if ``token`` is a snippet token of ours for ``slug`` that has not expired."""
    if not token or len(token) > 500:
        return False
    try:
        return verify(secret, EMBED_PURPOSE, token).get("l") == slug
    except BadToken:
        return False


def snippet(service_url: str, secret: bytes, slug: str, list_name: str) -> str:
    """The HTML to paste into another website's page (no script; plain form post)."""
    action = escape(f"{service_url.rstrip('/')}/subscribe/{slug}")
    name = escape(list_name)
    field_id = escape(f"nl-{slug}")
    hidden = "position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden"
    return f"""<!-- Sign-up form for {name}, from `newsletter lists embed {slug}`: renew yearly. -->
<form method="post" action="{action}" accept-charset="utf-8">
  <input type="hidden" name="{EMBED_FIELD}" value="{embed_token(secret, slug)}">
  <label for="{field_id}-email">Email address</label>
  <input type="email" id="{field_id}-email" name="email" required autocomplete="email">
  <label for="{field_id}-name">Name (optional)</label>
  <input type="text" id="{field_id}-name" name="name" autocomplete="name" maxlength="200">
  <div style="{hidden}" aria-hidden="true">
    <label for="{field_id}-website">Leave this empty</label>
    <input type="text" id="{field_id}-website" name="website" tabindex="-1" autocomplete="off">
  </div>
  <button type="submit">Subscribe to {name}</button>
  <p><small>We will email you a link to confirm.</small></p>
</form>
"""


def request_origin(request: Request) -> str:
    """The browser's Origin header, lower-cased ("" if none)."""
    return request.headers.get("origin", "").strip().lower()


def origin_allowed(request: Request) -> bool:
    """True if the request's Origin is one of ``[web] allowed_origins``."""
    origin = request_origin(request)
    return bool(origin) and origin in request.app.state.web.project.config.web.allowed_origins


def cors_headers(request: Request) -> dict[str, str]:
    """CORS headers for a JSON answer: only for an allowed origin."""
    if not origin_allowed(request):
        return {}
    return {"access-control-allow-origin": request_origin(request), "vary": "Origin"}
