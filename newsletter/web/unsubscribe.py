"""Unsubscribing at /unsubscribe/TOKEN: a page with a button, and the POST that does it.

The page offers leaving this list or every list, and an optional reason (a choice of
:data:`newsletter.store.leaving.REASONS` and a few words), kept in the history and
counted by ``newsletter status``.

GET never unsubscribes (mail scanners fetch every link). POST does, idempotently,
answering 200 both to the page's button and to the RFC 8058 one-click POST that
mail clients send (body ``List-Unsubscribe=One-Click``, no cookies: leaves the list,
with no reason). The token,
signed with NEWSLETTER_SECRET, names the subscriber and the list: it is the only
authority needed, and changing either makes the signature fail.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from ..store import Membership, MembershipStatus, Source, find_list, find_subscriber, unsubscribe
from ..store.leaving import MAX_NOTE, REASONS, reason_detail
from ..tokens import BadToken, LinkSubject, read_unsubscribe_link
from .context import WebContext
from .signup import ListInfo, info_of

ONE_CLICK = ("List-Unsubscribe", "One-Click")
logger = logging.getLogger("newsletter.web.unsubscribe")


def describe(ctx: WebContext, subscriber_id: int, slug: str) -> tuple[ListInfo, str]:
    """(list, email) an unsubscribe link is for; unknown ones are described by the slug."""
    with ctx.db.transaction() as session:
        mailing_list = find_list(session, slug)
        subscriber = find_subscriber(session, subscriber_id)
        info = info_of(mailing_list) if mailing_list else ListInfo(slug, slug, "", False)
        return info, subscriber.email if subscriber else ""


def unsubscribe_member(ctx: WebContext, subscriber_id: int, slug: str, detail: str,
                       every_list: bool = False) -> bool:
    """Unsubscribe one subscriber from one list (or every list); True if that changed anything.

    A person or list that no longer exists, or a membership already ended, is a no-op.
    """
    with ctx.db.transaction() as session:
        mailing_list = find_list(session, slug)
        subscriber = find_subscriber(session, subscriber_id)
        if every_list and subscriber is not None:
            return bool(unsubscribe(session, subscriber, None, source=Source.UNSUBSCRIBE_LINK,
                                    detail=detail))
        if mailing_list is None or subscriber is None:
            return False
        membership = session.get(Membership, (subscriber.id, mailing_list.id))
        if membership is None or membership.status == MembershipStatus.UNSUBSCRIBED:
            return False
        return bool(unsubscribe(session, subscriber, slug, source=Source.UNSUBSCRIBE_LINK,
                                detail=detail))


def _subject_known(ctx: WebContext, subject: LinkSubject) -> bool:
    """True if the link's subscriber exists and is the person the link was made for."""
    with ctx.db.transaction() as session:
        subscriber = find_subscriber(session, subject.subscriber_id)
        return subscriber is not None and subject.is_for(ctx.secret, subscriber.email)


async def _ids(ctx: WebContext, request: Request) -> tuple[int, str] | None:
    """(subscriber id, list) of a valid link for a known person; None gets the error page."""
    try:
        subject = read_unsubscribe_link(ctx.secret, request.path_params["token"])
    except BadToken:
        return None
    if not await ctx.run(_subject_known, ctx, subject):
        logger.warning("Rejected an unsubscribe link: no such subscriber, or another address")
        return None
    return subject.subscriber_id, subject.list_slug


def _bad_link(ctx: WebContext) -> Response:
    return ctx.error_page(
        400, "This link does not work",
        "The unsubscribe link is not valid. Please use the link from your most recent email, "
        "or reply to it and we will unsubscribe you.",
    )


async def unsubscribe_page(request: Request) -> Response:
    """GET /unsubscribe/TOKEN: a page with a button; never unsubscribes by itself."""
    ctx: WebContext = request.app.state.web
    ids = await _ids(ctx, request)
    if ids is None:
        return _bad_link(ctx)
    info, email = await ctx.run(describe, ctx, *ids)
    return ctx.page("unsubscribe", list=info, email=email, reasons=REASONS, max_note=MAX_NOTE,
                    action=request.url.path)


async def unsubscribe_post(request: Request) -> Response:
    """POST /unsubscribe/TOKEN: the page's button or RFC 8058 one-click; always 200 if valid."""
    ctx: WebContext = request.app.state.web
    ids = await _ids(ctx, request)
    if ids is None:
        if await _is_one_click(request):
            return PlainTextResponse("Invalid unsubscribe link.", 400)
        return _bad_link(ctx)
    if await _is_one_click(request):
        await ctx.run(unsubscribe_member, ctx, *ids, "one-click (RFC 8058)", write=True)
        return PlainTextResponse("You are unsubscribed.", 200,
                                 headers={"cache-control": "no-store"})
    form = await _form(request)
    every_list = form.get("scope") == "all"
    reason = str(form.get("reason") or "")
    detail = reason_detail("unsubscribe page", reason, str(form.get("note") or ""))
    await ctx.run(unsubscribe_member, ctx, *ids, detail, every_list, write=True)
    info, _email = await ctx.run(describe, ctx, *ids)
    return ctx.page("unsubscribed", list=info, every_list=every_list,
                    reason_given=detail != "unsubscribe page")


async def _form(request: Request) -> dict[str, object]:
    """The page's form fields (empty for any other kind of body)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return {}
    return dict(await request.form())


async def _is_one_click(request: Request) -> bool:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return False
    form = await request.form()
    return form.get(ONE_CLICK[0]) == ONE_CLICK[1]
