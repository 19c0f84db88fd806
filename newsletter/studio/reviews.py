"""Review links: a signed, expiring link to a read-only preview of one issue, for a
colleague without an account, who may leave Approve or a comment.

The token carries the issue's name under the studio's secret (:func:`newsletter.tokens.sign`),
so the link cannot be altered to show another issue, and it expires (7 days by default).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..errors import NewsletterError
from ..store import Review, add_review, record_action, reviews_for
from ..tokens import BadToken, sign, verify
from . import preview
from .editor import issue_path
from .security import EMAIL_CSP, check_csrf, require
from .state import StudioState, audit, page, redirect, root, state

PURPOSE = "studio-review"
DEFAULT_SECONDS = 7 * 86400


def _seconds(studio: StudioState) -> int:
    if studio.hosted is not None:
        return studio.hosted.review_seconds
    return studio.project.config.studio.review_days * 86400


def make_link_token(studio: StudioState, name: str, seconds: int | None = None) -> str:
    """The token of a review link to issue ``name``, expiring after ``seconds``."""
    return sign(studio.review_secret, PURPOSE, {"i": name},
                max_age=seconds if seconds is not None else _seconds(studio))


def _issue(request: Request) -> str:
    """The issue named by the request's token; 403 if altered or expired."""
    token = request.path_params["token"]
    try:
        payload = verify(state(request).review_secret, PURPOSE, token) if len(token) < 500 \
            else {}
        name = str(payload["i"])
    except BadToken as bad:
        if str(bad) == "expired":
            raise HTTPException(403, "This review link has expired. Ask whoever sent it for "
                                "a new one.") from None
        raise HTTPException(403, "This review link is not valid. Check that it was copied "
                            "whole, or ask for a new one.") from None
    except (KeyError, TypeError):
        raise HTTPException(403, "This review link is not valid.") from None
    issue_path(state(request).project, name)  # 404 if the issue is gone
    return name


def issue_reviews(studio: StudioState, name: str) -> list[Review]:
    """What reviewers said about ``name`` (nothing if the database cannot be opened)."""
    try:
        with studio.database.transaction() as session:
            found = reviews_for(session, name)
            session.expunge_all()
            return found
    except NewsletterError:
        return []


async def make_link(request: Request) -> Response:
    """POST /issues/NAME/review-link: a new link, shown in a note."""
    require(request, "edit")
    await check_csrf(request)
    studio = state(request)
    name = issue_path(studio.project, request.path_params["name"]).stem
    days = _seconds(studio) // 86400
    url = f"{str(request.base_url).rstrip('/')}/review/{make_link_token(studio, name)}"
    await run_in_threadpool(audit, request, "review link", name, f"valid {days} days")
    note = studio.note("review", [f"Review link (works for {days} days, for anyone who has "
                                  "it; they can read the email and approve or comment):", url])
    return redirect(request, f"/issues/{name}?note={note}#reviews")


async def review_page(request: Request) -> Response:
    """GET /review/TOKEN: the email, read-only, with Approve and a comment box."""
    name = _issue(request)
    studio = state(request)
    reviews = await run_in_threadpool(issue_reviews, studio, name)
    return page(request, "review.html", name=name, token=request.path_params["token"],
                reviews=reviews)


async def review_email(request: Request) -> Response:
    """GET /review/TOKEN/email.html: the rendered email for the sample subscriber."""
    name = _issue(request)
    studio = state(request)
    path = issue_path(studio.project, name)
    checked = await run_in_threadpool(studio.cache.check, studio.project, path)
    html = preview.email_html(studio.project, checked, root=root(request)) or (
        "<!doctype html><html lang=en><title>Not yet</title><p>This issue still has errors; "
        "the preview appears once they are fixed.</p>")
    return HTMLResponse(html, headers={"content-security-policy": EMAIL_CSP})


async def leave_review(request: Request) -> Response:
    """POST /review/TOKEN: keep Approve or a comment."""
    await check_csrf(request)
    name = _issue(request)
    form = await request.form()
    verdict = "approve" if form.get("verdict") == "approve" else "comment"
    reviewer = str(form.get("reviewer") or "").strip()
    comment = str(form.get("comment") or "").strip()
    if verdict == "comment" and not comment:
        raise HTTPException(400, "Write a comment first, then press Leave comment.")
    studio = state(request)

    def keep() -> None:
        with studio.database.transaction() as session:
            add_review(session, name, reviewer, verdict, comment)
            if studio.hosted is not None:
                record_action(session, f"{reviewer or 'a reviewer'} (review link)", "reviewed",
                              name, verdict)

    await run_in_threadpool(keep)
    thanks = "Thank you: your approval is noted." if verdict == "approve" else \
        "Thank you: your comment is noted."
    note = studio.note("info", [thanks])
    return redirect(request, f"/review/{request.path_params['token']}?note={note}")


ROUTES = [
    Route("/issues/{name}/review-link", make_link, methods=["POST"]),
    Route("/review/{token}", review_page),
    Route("/review/{token}", leave_review, methods=["POST"]),
    Route("/review/{token}/email.html", review_email),
]
