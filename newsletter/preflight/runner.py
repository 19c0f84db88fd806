"""Running preflight: the offline checks here, the slow ones (network, SpamAssassin) alongside."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ..errors import NewsletterError
from ..issue import Issue
from ..pipeline import check_and_render
from ..project import Project
from ..render import RenderedEmail
from .accessibility import check_accessibility
from .clients import check_clients
from .message import Subject, subscriber_message
from .report import CheckResult, Report
from .size import check_size
from .spam import check_spam

ORDER = ("links", "images", "spam", "clients", "accessibility", "size", "domain")
TITLES = {
    "links": "Links", "images": "Images", "spam": "Spam score (SpamAssassin)",
    "clients": "Email-client support (caniemail)", "accessibility": "Accessibility",
    "size": "Size and truncation", "domain": "Sender domain (SPF, DKIM, DMARC)",
}
NETWORK = ("links", "images", "domain")
OFFLINE_NOTE = "skipped: --offline (needs the network)"


def _stopped(exc: BaseException) -> str:
    """Why a check stopped, in words (its error's text, never a traceback)."""
    return (f"the check could not run ({type(exc).__name__}: {exc}); the other checks "
            "did. Run preflight again; if this stays, report it with this line")


def _timed(name: str, check: Callable[[], CheckResult]) -> CheckResult:
    """Run one check; a failure inside it becomes its result, never a traceback."""
    started = time.perf_counter()
    try:
        result = check()
    except Exception as exc:  # one broken check must not hide the others' findings
        result = CheckResult(name, TITLES[name], skipped=_stopped(exc))
    result.seconds = time.perf_counter() - started
    return result


async def _network(subject: Subject, timeout: float | None,
                   use_cache: bool) -> tuple[CheckResult, CheckResult]:
    # Imported here to save start-up time: asyncio, httpx and Pillow are not needed
    # --offline.
    import asyncio

    from .fetch import Fetcher
    from .images import check_images
    from .links import check_links

    async with Fetcher(timeout) as fetcher:
        started = time.perf_counter()
        links, images = await asyncio.gather(check_links(subject, fetcher, use_cache=use_cache),
                                             check_images(subject, fetcher))
        links.seconds = images.seconds = time.perf_counter() - started
        return links, images


def _network_checks(subject: Subject, timeout: float | None,
                    use_cache: bool) -> tuple[CheckResult, CheckResult]:
    import asyncio  # here to save start-up time (40 ms), as in _network

    try:
        # Always on a thread of its own: the caller may already be inside an event loop
        # (the studio and preview are async servers; Playwright's sync API runs one),
        # where asyncio.run() refuses to start.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="preflight") as pool:
            return pool.submit(asyncio.run, _network(subject, timeout, use_cache)).result()
    except Exception as exc:
        why = _stopped(exc)
        return (CheckResult("links", TITLES["links"], skipped=why),
                CheckResult("images", TITLES["images"], skipped=why))


def _check_domain(subject: Subject) -> CheckResult:
    from .domain import check_domain  # here to save start-up time: dnspython, not --offline

    return check_domain(subject)


def prepare(project: Project, issue_path: Path, issue: Issue | None = None,
            rendered: RenderedEmail | None = None) -> Subject:
    """The subscriber's message for ``issue_path`` (rendering it unless given)."""
    if issue is None or rendered is None:
        try:
            result, rendered = check_and_render(project, issue_path)
        except (OSError, UnicodeDecodeError) as exc:  # a template file that cannot be read
            raise NewsletterError(
                f"An email template could not be read ({exc}), so the email could not be "
                "made and checked.",
                hint=f"Save the templates in {project.templates_dir} as UTF-8 text (or delete "
                "your copy to use the default), then run `newsletter preflight` again.",
            ) from None
        if result.errors or result.issue is None or rendered is None:
            raise NewsletterError(
                f"{issue_path} has {len(result.errors)} error(s):\n  "
                + "\n  ".join(str(d) for d in result.errors),
                hint=f"Fix them, then run `newsletter check {issue_path}`.",
            )
        issue = result.issue
    return subscriber_message(project, issue_path, issue, rendered)


def run_preflight(
    project: Project,
    issue_path: Path,
    *,
    offline: bool = False,
    spam: bool = True,
    not_run: str = OFFLINE_NOTE,
    issue: Issue | None = None,
    rendered: RenderedEmail | None = None,
    timeout: float | None = None,
    use_cache: bool = True,
) -> Report:
    """Every check on the email ``issue_path`` makes; ``offline`` skips links, images, domain.

    ``spam=False`` leaves SpamAssassin out too (its start costs seconds); each check left
    out says ``not_run``. Pass ``issue`` and ``rendered`` when they are at hand (a send
    or the studio has rendered it already).
    Raises NewsletterError only when the issue itself has errors.
    """
    started = time.perf_counter()
    subject = prepare(project, issue_path, issue, rendered)
    results: dict[str, CheckResult] = {}
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="preflight") as pool:
        scored = pool.submit(_timed, "spam", lambda: check_spam(subject)) if spam else None
        network: Future[tuple[CheckResult, CheckResult]] | None = None
        domain: Future[CheckResult] | None = None
        if not offline:
            network = pool.submit(_network_checks, subject, timeout, use_cache)
            domain = pool.submit(_timed, "domain", lambda: _check_domain(subject))
        results["clients"] = _timed("clients", lambda: check_clients(subject))
        results["accessibility"] = _timed("accessibility", lambda: check_accessibility(subject))
        results["size"] = _timed("size", lambda: check_size(subject))
        if scored is not None:
            results["spam"] = scored.result()
        if network is not None and domain is not None:
            results["links"], results["images"] = network.result()
            results["domain"] = domain.result()
    for name in (*NETWORK, "spam"):
        results.setdefault(name, CheckResult(name, TITLES[name], skipped=not_run))
    return Report([results[name] for name in ORDER], offline=offline,
                  seconds=time.perf_counter() - started)
