"""The subscribers pages (admins): lists and counts, search, a person's page, add,
unsubscribe, forget (erasure on request), import with a preview, export. Every change
goes through the same store functions as `newsletter subscribers`.
"""

from __future__ import annotations

import io
import secrets
import tempfile
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import NewsletterError
from ..store import (
    Database,
    MembershipStatus,
    Source,
    add_subscriber,
    find_subscriber,
    forget,
    get_subscriber,
    history,
    list_summaries,
    memberships,
    search_subscribers,
    unsubscribe,
    use_secret,
)
from ..store.export import export_csv, export_xlsx
from ..store.importer import ImportReport, import_csv
from ..tokens import project_secret
from .security import MAX_BODY_BYTES, check_csrf, require
from .state import StudioState, audit, page, redirect, state

IMPORT_SUFFIXES = (".csv", ".txt", ".xlsx")
SHOWN = 100  # rejected and skipped rows listed in the preview


def _lists(studio: StudioState) -> list[Any]:
    with studio.database.transaction() as session:
        return list_summaries(session)


async def subscribers_page(request: Request) -> Response:
    """GET /subscribers: the lists with counts; ?q= searches by address or name."""
    require(request, "admin")
    studio = state(request)
    query = request.query_params.get("q", "").strip()[:200]

    def load() -> tuple[list[Any], list[tuple[int, str, str, str]]]:
        with studio.database.transaction() as session:
            found = [(s.id, s.email, s.name, s.status)
                     for s in search_subscribers(session, query)] if query else []
            return list_summaries(session), found

    lists, found = await run_in_threadpool(load)
    return page(request, "subscribers.html", lists=lists, query=query, found=found,
                default_list=studio.project.config.delivery.default_list)


def _keyed(studio: StudioState) -> Database:
    """The subscriber database, its erasure key registered as `newsletter serve` does.

    The key is needed to forget someone, and to add anyone once someone was forgotten.
    """
    database = studio.database
    if studio.hosted is not None:
        use_secret(database.engine, studio.hosted.secret)
    else:
        root = studio.project_root
        use_secret(database.engine, lambda: project_secret(root))  # read only when needed
    return database


def _person(studio: StudioState, raw: str) -> dict[str, Any]:
    """What the person's page shows (blocking: call in a thread)."""
    with studio.database.transaction() as session:
        person = get_subscriber(session, int(raw))
        lists = memberships(session, person)
        slugs = {m.list_id: m.mailing_list.slug for m in lists}
        return {
            "person": {"id": person.id, "email": person.email, "name": person.name,
                       "status": person.status, "since": person.status_changed_at,
                       "added": person.created_at,
                       "attributes": sorted((person.attributes or {}).items())},
            "lists": [(m.mailing_list.slug, m.status, m.changed_at, m.how) for m in lists],
            "entries": [(e.at, slugs.get(e.list_id, "-") if e.list_id else "(all lists)",
                         e.old_status or "new", e.new_status, e.source, e.detail)
                        for e in history(session, person)],
            "all_lists": [s.slug for s in list_summaries(session)],
        }


def _subscriber_id(request: Request) -> str:
    raw = str(request.path_params["id"])
    if not raw.isdigit():
        raise HTTPException(404, "There is no such subscriber.")
    return raw


async def person_page(request: Request) -> Response:
    """GET /subscribers/ID: memberships and the full history."""
    require(request, "admin")
    raw = _subscriber_id(request)
    context = await run_in_threadpool(_person, state(request), raw)
    return page(request, "person.html", wrong_forget=False, **context)


async def add_person(request: Request) -> Response:
    """POST /subscribers/add: subscribe an address to a list (consent rule applies)."""
    user = require(request, "admin")
    await check_csrf(request)
    studio = state(request)
    form = await request.form()
    email, slug = str(form.get("email") or "").strip(), str(form.get("list") or "").strip()
    name = str(form.get("name") or "").strip() or None
    if not email or not slug:
        raise NewsletterError("Type the address and the list, then press Add subscriber.")

    def add() -> int:
        with _keyed(studio).transaction() as session:
            membership = add_subscriber(
                session, email, slug, name=name, status=MembershipStatus.SUBSCRIBED,
                source=Source.COMMAND, detail=f"studio, by {user.email or 'the local user'}",
                resubscribe=form.get("resubscribe") == "yes")
            return membership.subscriber_id

    person = await run_in_threadpool(add)
    await run_in_threadpool(audit, request, "subscribed", email, f"to {slug}")
    note = studio.note("info", [f"{email} is subscribed to {slug}."])
    return redirect(request, f"/subscribers/{person}?note={note}")


async def unsubscribe_person(request: Request) -> Response:
    """POST /subscribers/ID/unsubscribe: from one list, or from every list."""
    user = require(request, "admin")
    await check_csrf(request)
    studio = state(request)
    raw = request.path_params["id"]
    form = await request.form()
    slug = str(form.get("list") or "") or None
    reason = str(form.get("reason") or "").strip()[:500]

    def remove() -> tuple[str, list[str]]:
        with studio.database.transaction() as session:
            person = get_subscriber(session, int(raw) if raw.isdigit() else -1)
            changed = unsubscribe(session, person, slug, source=Source.COMMAND,
                                  detail=reason or f"studio, by {user.email or 'local user'}")
            return person.email, [m.mailing_list.slug for m in changed]

    email, slugs = await run_in_threadpool(remove)
    await run_in_threadpool(audit, request, "unsubscribed", email, ", ".join(slugs))
    text = (f"Unsubscribed {email} from {', '.join(slugs)}." if slugs
            else f"{email} was not subscribed" + (f" to {slug}." if slug else " to any list."))
    return redirect(request, f"/subscribers/{raw}?note={studio.note('info', [text])}")


async def forget_person(request: Request) -> Response:
    """POST /subscribers/ID/forget: erase the person for good, once their address is typed.

    Only a keyed hash of the address is kept; the audit entry names the id, not the address.
    """
    require(request, "admin")
    await check_csrf(request)
    studio = state(request)
    raw = _subscriber_id(request)
    form = await request.form()
    typed = str(form.get("confirm") or "").strip()
    database = _keyed(studio)

    def erase() -> tuple[bool, str]:
        with database.transaction() as session:
            person = get_subscriber(session, int(raw))
            if find_subscriber(session, typed) is not person:  # any spelling of theirs
                return False, ""
            done = forget(session, person)
            return True, (f"{done.lists} list(s), {done.history} history entries and "
                          f"{done.reader_events} open/click records deleted")

    forgotten, detail = await run_in_threadpool(erase)
    if not forgotten:
        context = await run_in_threadpool(_person, studio, raw)
        return page(request, "person.html", status=400, wrong_forget=True, **context)
    await run_in_threadpool(audit, request, "forgot a subscriber", f"subscriber #{raw}",
                            detail)
    note = studio.note("info", ["Forgotten: only a keyed fingerprint of the address is kept, "
                                "so nobody can add them back."])
    return redirect(request, f"/subscribers?note={note}")


# ---------------------------------------------------------------- import and export


async def import_page(request: Request) -> Response:
    """GET /subscribers/import: choose a file and a list."""
    require(request, "admin")
    lists = await run_in_threadpool(_lists, state(request))
    return page(request, "import.html", lists=lists, report=None, key="", shown=SHOWN,
                default_list=state(request).project.config.delivery.default_list)


async def import_preview(request: Request) -> Response:
    """POST /subscribers/import: a dry run of the uploaded file; nothing is written."""
    user = require(request, "admin")
    await check_csrf(request)
    studio = state(request)
    form = await request.form(max_part_size=MAX_BODY_BYTES)
    upload, slug = form.get("file"), str(form.get("list") or "")
    resubscribe = form.get("resubscribe") == "yes"
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise NewsletterError("Choose a CSV or Excel (.xlsx) file first, then press Preview.")
    suffix = Path(upload.filename).suffix.lower()
    if suffix not in IMPORT_SUFFIXES:
        raise NewsletterError("Choose a CSV or Excel (.xlsx) file: this one ends in "
                              f"{suffix or 'nothing'}.")
    folder = Path(tempfile.mkdtemp(prefix="studio-import-"))
    path = folder / ("upload" + suffix)
    path.write_bytes(await upload.read())

    def dry_run() -> ImportReport:
        return import_csv(_keyed(studio).engine, path, slug, resubscribe=resubscribe,
                          dry_run=True)

    report = await run_in_threadpool(dry_run)
    key = secrets.token_urlsafe(12)
    with studio.lock:
        studio.imports[key] = (user.email, path, slug, resubscribe)
    lists = await run_in_threadpool(_lists, studio)
    return page(request, "import.html", lists=lists, report=report, key=key, shown=SHOWN,
                filename=upload.filename, default_list=slug)


async def import_confirm(request: Request) -> Response:
    """POST /subscribers/import/KEY: import the previewed file for real."""
    user = require(request, "admin")
    await check_csrf(request)
    studio = state(request)
    with studio.lock:
        waiting = studio.imports.get(request.path_params["key"])
        if waiting is None or waiting[0] != user.email:
            raise HTTPException(404, "That import preview has gone; choose the file again.")
        del studio.imports[request.path_params["key"]]
    _owner, path, slug, resubscribe = waiting
    form = await request.form()
    name = str(form.get("filename") or path.name)[:200]
    try:
        report = await run_in_threadpool(lambda: import_csv(
            _keyed(studio).engine, path, slug, resubscribe=resubscribe, source=Source.IMPORT))
    finally:
        path.unlink(missing_ok=True)
        path.parent.rmdir()
    await run_in_threadpool(audit, request, "imported", slug,
                            f"{name}: {report.added} added, {report.updated} updated, "
                            f"{report.rejected} rejected, {report.skipped} skipped")
    note = studio.note("info", [
        f"Imported {name} into {slug}: {report.added:,} added, {report.updated:,} updated, "
        f"{report.unchanged:,} unchanged, {report.rejected:,} rejected, "
        f"{report.skipped:,} skipped."])
    return redirect(request, f"/subscribers?note={note}")


async def export(request: Request) -> Response:
    """GET /subscribers/export?list=SLUG&format=csv|xlsx: the list's members as a file."""
    require(request, "admin")
    studio = state(request)
    slug = request.query_params.get("list", "")
    excel = request.query_params.get("format") == "xlsx"

    def write() -> bytes:
        if excel:
            with tempfile.TemporaryDirectory() as folder:
                target = Path(folder) / "export.xlsx"
                export_xlsx(studio.database.engine, slug, target)
                return target.read_bytes()
        out = io.StringIO()
        export_csv(studio.database.engine, slug, out, excel=True)
        return out.getvalue().encode("utf-8")

    data = await run_in_threadpool(write)
    await run_in_threadpool(audit, request, "exported", slug, "xlsx" if excel else "csv")
    kind = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" if excel
            else "text/csv; charset=utf-8")
    filename = f"{slug}.{'xlsx' if excel else 'csv'}"
    return Response(data, media_type=kind,
                    headers={"content-disposition": f'attachment; filename="{filename}"'})


ROUTES = [
    Route("/subscribers", subscribers_page),
    Route("/subscribers/add", add_person, methods=["POST"]),
    Route("/subscribers/import", import_page),
    Route("/subscribers/import", import_preview, methods=["POST"]),
    Route("/subscribers/import/{key}", import_confirm, methods=["POST"]),
    Route("/subscribers/export", export),
    Route("/subscribers/{id}", person_page),
    Route("/subscribers/{id}/unsubscribe", unsubscribe_person, methods=["POST"]),
    Route("/subscribers/{id}/forget", forget_person, methods=["POST"]),
]
