"""Sign-up at /subscribe/SLUG (form or JSON) and double opt-in confirmation at /confirm/TOKEN.

Whatever the address's state, the answer is the same, so the form never tells a
stranger who is on the list. The store decides what a sign-up may do
(:func:`newsletter.store.sign_up`): a double opt-in list, or someone who left the
list before, gets an unconfirmed membership and a signed, expiring confirmation
link; a newcomer to a single opt-in list is subscribed at once.
The confirmation link shows a button (mail scanners fetch links; only a person clicks),
and the click subscribes and may send the welcome email.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import NewsletterError
from ..store import (
    InvalidEmail,
    Membership,
    MembershipStatus,
    Outcome,
    Source,
    SubscriberStatus,
    confirm,
    find_list,
    find_subscriber,
    normalise_email,
)
from ..store import sign_up as store_sign_up
from ..tokens import BadToken, sign, unsubscribe_token, verify
from .context import WebContext, log
from .embed import (
    EMBED_FIELD,
    cors_headers,
    embed_token_ok,
    origin_allowed,
    request_origin,
    snippet,
)
from .jsonbody import BadJSON, load_json
from .security import (
    CSRF_COOKIE,
    CSRF_FIELD,
    CSRF_MAX_AGE,
    HONEYPOT_FIELD,
    client_ip,
    csrf_ok,
    csrf_token_for,
    mailbox_key,
    new_csrf,
    same_origin,
)

CONFIRM_PURPOSE = "confirm"


@dataclass(frozen=True)
class ListInfo:
    """What pages show of a list (read inside the transaction, used after it)."""

    slug: str
    name: str
    description: str
    double_opt_in: bool


@dataclass(frozen=True)
class Mail:
    """One transactional message to send once the transaction has committed."""

    to: str
    template: str
    values: dict[str, Any]


def info_of(mailing_list: Any) -> ListInfo:
    """The :class:`ListInfo` of a MailingList."""
    return ListInfo(mailing_list.slug, mailing_list.name, mailing_list.description,
                    mailing_list.double_opt_in)


def confirm_token(secret: bytes, subscriber_id: int, list_slug: str, days: int) -> str:
    """The signed token of a confirmation link; it expires after ``days``."""
    return sign(secret, CONFIRM_PURPOSE, {"s": subscriber_id, "l": list_slug},
                max_age=days * 86400)


def read_confirm_token(secret: bytes, token: str) -> tuple[int, str]:
    """(subscriber_id, list_slug) of a confirmation token, or raise BadToken."""
    payload = verify(secret, CONFIRM_PURPOSE, token)
    try:
        return int(payload["s"]), str(payload["l"])
    except (KeyError, TypeError, ValueError):
        raise BadToken("malformed payload") from None


def welcome_mail(ctx: WebContext, subscriber: Any, info: ListInfo, *,
                 confirmed: bool = True) -> Mail | None:
    """The welcome email for a new subscriber, if the service sends one.

    ``confirmed=False``: nobody has proven the address is theirs yet (a single opt-in
    sign-up), so the name a stranger typed is left out.
    """
    if not ctx.welcome or subscriber.status != SubscriberStatus.ACTIVE:
        return None
    token = unsubscribe_token(ctx.secret, subscriber.id, info.slug, subscriber.email)
    return Mail(subscriber.email, "welcome_email", {
        "list": info, "email": subscriber.email,
        "name": subscriber.name if confirmed else "",
        "unsubscribe_url": f"{ctx.project.config.service_url}/unsubscribe/{token}",
    })


def sign_up(ctx: WebContext, slug: str, email: str, name: str, confirm_first: bool = False
            ) -> tuple[ListInfo, Mail | None]:
    """Put ``email`` on list ``slug`` from the web form; the email to send, if any.

    Raises LookupError if there is no such list. What the request may do (confirm
    first, join at once, nothing) is the store's decision: :func:`newsletter.store.sign_up`.
    """
    with ctx.db.transaction() as session:
        mailing_list = find_list(session, slug)
        if mailing_list is None:
            raise LookupError(slug)
        info = info_of(mailing_list)
        done = store_sign_up(session, email, slug, name=name, source=Source.WEB_FORM,
                             detail="embedded sign-up form" if confirm_first
                             else "sign-up form", double_opt_in=confirm_first)
        subscriber = done.subscriber
        if done.outcome is Outcome.CONFIRM and subscriber is not None:
            token = confirm_token(ctx.secret, subscriber.id, slug, ctx.limits.confirm_days)
            # No name: whoever typed this address may have put spam or links in it,
            # and the owner of the address has not asked for anything yet.
            return info, Mail(subscriber.email, "confirm_email", {
                "list": info, "email": subscriber.email, "name": "",
                "confirm_url": f"{ctx.project.config.service_url}/confirm/{token}",
                "confirm_days": ctx.limits.confirm_days,
            })
        if done.outcome is Outcome.JOINED:
            return info, welcome_mail(ctx, subscriber, info, confirmed=False)
        return info, None  # already subscribed, or bounced/complained: never mail them


def _pending(session: Any, subscriber_id: int, slug: str) -> tuple[Any, Any, Membership]:
    """(list, subscriber, membership) a confirmation link is for, or LookupError.

    The link no longer fits if the list or person is gone, or they unsubscribed since.
    """
    mailing_list = find_list(session, slug)
    subscriber = find_subscriber(session, subscriber_id)
    if mailing_list is None or subscriber is None:
        raise LookupError(slug)
    membership = session.get(Membership, (subscriber.id, mailing_list.id))
    if membership is None or membership.status == MembershipStatus.UNSUBSCRIBED:
        raise LookupError(slug)
    return mailing_list, subscriber, membership


def confirm_signup(
    ctx: WebContext, subscriber_id: int, slug: str, apply: bool = True
) -> tuple[ListInfo, str, Mail | None]:
    """Confirm a double opt-in sign-up: (list, email, welcome email or None).

    Raises LookupError if the link no longer fits. Confirming twice is harmless and
    sends nothing more. With ``apply=False`` it only looks (for the page with the button).
    """
    with ctx.db.transaction() as session:
        mailing_list, subscriber, membership = _pending(session, subscriber_id, slug)
        info = info_of(mailing_list)
        if not apply or membership.status == MembershipStatus.SUBSCRIBED:
            return info, subscriber.email, None
        confirm(session, subscriber.id, slug, source=Source.WEB_FORM, detail="confirmation link")
        return info, subscriber.email, welcome_mail(ctx, subscriber, info)


def list_info(ctx: WebContext, slug: str) -> ListInfo | None:
    """The list with this slug, or None."""
    with ctx.db.transaction() as session:
        found = find_list(session, slug)
        return info_of(found) if found is not None else None


async def deliver(ctx: WebContext, mail: Mail) -> bool:
    """Send one transactional email (in a worker thread); False if it could not go out.

    Failures are logged (without the address), never shown: the sign-up answer went
    out before, and is the same whether or not an email was due.
    """
    subject, html, text = ctx.email(mail.template, **mail.values)

    def send() -> None:
        ctx.send(to=mail.to, subject=subject, html=html, text=text)

    try:
        await ctx.run(send)
    except Exception as exc:  # a transport problem must not become a 500 with details
        # NewsletterError messages are written for people and hold no secrets.
        reason = exc.message if isinstance(exc, NewsletterError) else type(exc).__name__
        log.error("could not send the %s email: %s", mail.template, reason)
        return False
    return True


# ---------------------------------------------------------------- routes


def _form_page(ctx: WebContext, request: Request, info: ListInfo, status_code: int = 200,
               **values: Any) -> Response:
    cookie = request.cookies.get(CSRF_COOKIE)
    if cookie and 16 <= len(cookie) <= 64:  # keep one nonce across tabs
        nonce, token = cookie, csrf_token_for(ctx.secret, cookie)
    else:
        nonce, token = new_csrf(ctx.secret)
    response = ctx.page("subscribe", status_code, list=info, csrf_token=token,
                        email=values.get("email", ""), name=values.get("name", ""),
                        error=values.get("error", ""))
    response.set_cookie(CSRF_COOKIE, nonce, max_age=CSRF_MAX_AGE, path="/subscribe",
                        httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


async def subscribe_form(request: Request) -> Response:
    """GET /subscribe/SLUG: the sign-up form."""
    ctx: WebContext = request.app.state.web
    info = await ctx.run(list_info, ctx, request.path_params["slug"])
    if info is None:
        return ctx.error_page(404, "No such list", "There is no newsletter list at this address.")
    return _form_page(ctx, request, info)


async def subscribe_post(request: Request) -> Response:
    """POST /subscribe/SLUG: form fields or a JSON object with email, name (and the honeypot)."""
    ctx: WebContext = request.app.state.web
    slug = request.path_params["slug"]
    as_json = request.headers.get("content-type", "").split(";")[0].strip() == "application/json"
    if as_json:
        try:
            data = load_json(await request.body())
        except BadJSON:
            return JSONResponse({"error": "The body is not valid JSON."}, 400)
        if not isinstance(data, dict):
            return JSONResponse({"error": "Expected a JSON object with email and name."}, 400)
    else:
        data = dict(await request.form())
    fields = {key: str(data.get(key) or "")[:400] for key in ("email", "name", HONEYPOT_FIELD)}
    cors = cors_headers(request)
    # From another website: only from [web] allowed_origins, and always double opt-in.
    elsewhere = bool(request_origin(request)) and not same_origin(request)
    if elsewhere and not origin_allowed(request):
        log.warning("sign-up refused: origin not in [web] allowed_origins")
        message = ("Sign-ups from this website are not accepted. The website's owner can "
                   "add it to allowed_origins in the [web] table of newsletter.toml.")
        if as_json:
            return JSONResponse({"error": message}, 403)
        return ctx.error_page(403, "Not allowed", message)

    info = await ctx.run(list_info, ctx, slug)
    if info is None:
        if as_json:
            return JSONResponse({"error": "There is no such list."}, 404, headers=cors)
        return ctx.error_page(404, "No such list", "There is no newsletter list at this address.")
    embedded = not as_json and EMBED_FIELD in data
    if embedded and not embed_token_ok(ctx.secret, str(data.get(EMBED_FIELD, "")), slug):
        return ctx.error_page(
            403, "This form is out of date",
            "This sign-up form is out of date. Please tell the website's owner: they can "
            f"make a new one with `newsletter lists embed {slug}`.")
    if not as_json and not embedded and (
        not same_origin(request)
        or not csrf_ok(ctx.secret, request.cookies.get(CSRF_COOKIE), str(data.get(CSRF_FIELD, "")))
    ):
        return _form_page(ctx, request, info, 403, email=fields["email"], name=fields["name"],
                          error="The form had expired. Please send it again.")
    confirm_first = embedded or elsewhere
    found = info  # the list exists (checked above); named for the closure below

    def done() -> Response:
        if as_json:
            message = ("Check your inbox to confirm." if found.double_opt_in or confirm_first
                       else "Subscribed.")
            return JSONResponse({"ok": True, "message": message}, headers=cors)
        return ctx.page("check_inbox", list=found, confirm_days=ctx.limits.confirm_days,
                        confirm_first=confirm_first)

    if fields[HONEYPOT_FIELD].strip():
        return done()  # a bot filled the hidden field: pretend all went well
    limits = ctx.limits
    if not await ctx.allow("ip", client_ip(request), limits.signups_per_ip, limits.ip_window):
        message = "Too many sign-ups from your network. Please try again later."
        headers = {"Retry-After": str(int(ctx.limits.ip_window))}
        if as_json:
            return JSONResponse({"error": message}, 429, headers={**headers, **cors})
        return ctx.error_page(429, "Please wait a little", message, headers)
    try:
        if "\ufffd" in fields["email"]:  # what bytes that were not UTF-8 became
            raise InvalidEmail("the address is not valid text")
        email = normalise_email(fields["email"])
    except InvalidEmail:
        error = "That does not look like an email address. Please check it."
        if as_json:
            return JSONResponse({"error": error}, 400, headers=cors)
        if embedded:
            return ctx.error_page(400, "Please check the address", error)
        return _form_page(ctx, request, info, 400, email=fields["email"], name=fields["name"],
                          error=error)
    if not await ctx.allow("mailbox", mailbox_key(email), limits.signups_per_address,
                           limits.address_window):
        return done()  # the same answer, but no more mail to that inbox for a while
    try:
        info, mail = await ctx.run(sign_up, ctx, slug, email, fields["name"].strip()[:200],
                                   confirm_first, write=True)
    except LookupError:
        return done()
    response = done()
    if mail is not None:
        # After the answer, so its timing does not tell whether an email was due.
        response.background = BackgroundTask(deliver, ctx, mail)
    return response


async def confirmation(request: Request) -> Response:
    """/confirm/TOKEN: GET shows a button (never confirms by itself); POST confirms."""
    ctx: WebContext = request.app.state.web
    try:
        ids = read_confirm_token(ctx.secret, request.path_params["token"])
        posted = request.method == "POST"
        info, email, mail = await ctx.run(confirm_signup, ctx, *ids, posted, write=posted)
    except (BadToken, LookupError):
        return ctx.error_page(
            400, "This link does not work",
            "The confirmation link is not valid, or it has expired. Please sign up again.",
        )
    if not posted:
        return ctx.page("confirm", list=info, email=email, action=request.url.path)
    response = ctx.page("confirmed", list=info, email=email)
    if mail is not None:  # the subscription stands even if the welcome email fails
        response.background = BackgroundTask(deliver, ctx, mail)
    return response


async def subscribe_preflight(request: Request) -> Response:
    """OPTIONS /subscribe/SLUG: CORS preflight of a JSON sign-up, for allowed origins only."""
    headers = cors_headers(request)
    if not headers:
        return Response(status_code=403)
    headers.update({"access-control-allow-methods": "POST",
                    "access-control-allow-headers": "Content-Type",
                    "access-control-max-age": "600"})
    return Response(status_code=204, headers=headers)


async def embed_page(request: Request) -> Response:
    """GET /subscribe/SLUG/embed: the snippet to paste into another website."""
    ctx: WebContext = request.app.state.web
    info = await ctx.run(list_info, ctx, request.path_params["slug"])
    if info is None:
        return ctx.error_page(404, "No such list", "There is no newsletter list at this address.")
    code = snippet(ctx.project.config.service_url, ctx.secret, info.slug, info.name)
    return ctx.page("embed", list=info, snippet=code,
                    allowed_origins=ctx.project.config.web.allowed_origins)
