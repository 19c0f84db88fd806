"""A local preview server: the rendered email at desktop and phone widths, reloading on change."""

from __future__ import annotations

import errno
import html
import json
import os
import socket
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from .errors import NewsletterError
from .issue import Issue
from .pipeline import FOOTER_FIELD, check_issue
from .preflight import Report, run_preflight
from .project import Project
from .render import RenderedEmail, render_email

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Preview: {title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body {{ font-family: system-ui, sans-serif; margin: 0; background: #e9e6df; color: #1f2328; }}
 header {{ padding: 12px 20px; background: #1f2328; color: #fff; }}
 header small {{ opacity: .75; }}
 main {{ display: flex; gap: 24px; padding: 20px; align-items: flex-start; flex-wrap: wrap; }}
 figure {{ margin: 0; }}
 figcaption {{ font-size: 13px; margin-bottom: 6px; }}
 iframe {{ border: 1px solid #bbb; background: #fff; height: 85vh; }}
 #desktop {{ width: 640px; }} #phone {{ width: 375px; }}
 pre {{ white-space: pre-wrap; width: 72ch; background: #fff; padding: 12px;
        border: 1px solid #bbb; height: 85vh; overflow: auto; margin: 0; }}
 #preflight {{ background: #fff; border: 1px solid #bbb; padding: 8px 16px; flex: 1 1 100%; }}
 #preflight h2 {{ margin: 4px 0 8px; font-size: 18px; }}
 #preflight table {{ border-collapse: collapse; font-size: 14px; }}
 #preflight th, #preflight td {{ text-align: left; vertical-align: top; padding: 3px 10px 3px 0; }}
 #preflight .check td {{ border-top: 1px solid #ddd; }}
 .mark-ok {{ color: #1a7f37; }} .mark-warning {{ color: #8a5a00; font-weight: 600; }}
 .mark-error {{ color: #b3261e; font-weight: 700; }} .mark-skipped {{ color: #57606a; }}
 .problems {{ background: #fff4e5; border-left: 4px solid #b3541e; margin: 12px 20px;
              padding: 8px 16px; white-space: pre-wrap; font-family: monospace; }}
</style></head>
<body>
<header><strong>{title}</strong> <small>{path} · reloads when the file or a template
changes</small></header>
{problems}
<main>
<figure><figcaption>Desktop (640 px)</figcaption>
<iframe id="desktop" title="Email at desktop width" src="/email.html"></iframe></figure>
<figure><figcaption>Phone (375 px)</figcaption>
<iframe id="phone" title="Email at phone width" src="/email.html"></iframe></figure>
<figure><figcaption>Plain text</figcaption><pre id="text">{text}</pre></figure>
<section id="preflight" aria-labelledby="preflight-title">
<h2 id="preflight-title">Preflight</h2>
<div id="preflight-result" aria-live="polite"><p>Checking the email…</p></div>
<p><button type="button" id="preflight-full">Run full preflight</button>
<small>(needs the network)</small></p>
</section>
</main>
<script>
const result = document.getElementById("preflight-result");
const full = document.getElementById("preflight-full");
async function preflight(online) {{
  full.disabled = true;
  result.innerHTML = "<p>Checking the email" + (online ? ", its links and images" : "") + "…</p>";
  try {{
    const response = await fetch("/preflight" + (online ? "?full=1" : ""));
    result.innerHTML = await response.text();
  }} catch (e) {{
    result.innerHTML = "<p>The preview server did not answer: is `newsletter preview` " +
      "still running?</p>";
  }}
  full.disabled = false;
}}
full.addEventListener("click", () => preflight(true));
preflight(false);
let stamp = {stamp};
setInterval(async () => {{
  try {{
    const response = await fetch("/version");
    const now = (await response.json()).stamp;
    if (now !== stamp) location.reload();
  }} catch (e) {{}}
}}, 700);
</script>
</body></html>
"""


def watched_files(project: Project, issue_path: Path) -> list[Path]:
    """The issue file, newsletter.toml and every template the email could use."""
    files = [issue_path, project.root / "newsletter.toml"]
    if project.templates_dir.is_dir():
        files += sorted(p for p in project.templates_dir.rglob("*") if p.is_file())
    return files


def stamp(files: list[Path]) -> str:
    """Changes whenever one of ``files`` is modified, added or removed."""
    parts = []
    for path in files:
        try:
            info = path.stat()
            parts.append(f"{path}:{info.st_mtime_ns}:{info.st_size}")
        except FileNotFoundError:
            parts.append(f"{path}:gone")
    return str(hash("|".join(parts)))


def create_app(project_root: Path, issue_path: Path) -> Starlette:
    """The preview web app for one issue file."""

    def checked() -> tuple[Project, Issue | None, RenderedEmail | None, str]:
        """(project, issue, rendered email, problems); reloads newsletter.toml every time."""
        project = Project(project_root)
        try:
            result = check_issue(project, issue_path)
            problems = "\n".join(str(d) for d in result.diagnostics)
            # A footer without unsubscribe link or address is an error that still
            # renders: the preview shows the email with the problem above it.
            if result.issue is None or any(d.field != FOOTER_FIELD for d in result.errors):
                return project, None, None, problems
            rendered = render_email(project, result.issue)
        except NewsletterError as exc:
            # A mistake in newsletter.toml or a template: the same words as in the terminal.
            return project, None, None, exc.message + (f"\nNext: {exc.hint}" if exc.hint else "")
        return project, result.issue, rendered, problems

    def current() -> tuple[Project, str, str, str]:
        """(project, html, text, problems)."""
        project, _issue, rendered, problems = checked()
        if rendered is None:
            return project, "", "", problems
        return project, rendered.html, rendered.text, problems

    def version(_: Request) -> Response:
        project = Project(project_root)
        return Response(
            json.dumps({"stamp": stamp(watched_files(project, issue_path))}),
            media_type="application/json",
        )

    def page(_: Request) -> Response:
        project, _html, text, problems = current()
        box = ""
        if problems:
            box = f'<div class="problems" role="alert">{html.escape(problems)}</div>'

        return HTMLResponse(
            PAGE.format(
                title=html.escape(issue_path.name),
                path=html.escape(str(issue_path)),
                problems=box,
                text=html.escape(text),
                stamp=json.dumps(stamp(watched_files(project, issue_path))),
            )
        )

    def email_html(_: Request) -> Response:
        _project, rendered, _text, problems = current()
        if not rendered:
            body = ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
                    "<title>Cannot show the email</title></head><body>"
                    f'<pre role="alert">{html.escape(problems)}</pre></body></html>')
            return HTMLResponse(body, status_code=422)
        return HTMLResponse(rendered)

    def email_text(_: Request) -> Response:
        _project, _html, text, problems = current()
        return PlainTextResponse(text or problems, status_code=200 if text else 422)

    def preflight(request: Request) -> Response:
        # A sync endpoint: Starlette runs it in a thread, so the slow checks do not
        # hold up the email's own requests.
        project, issue, rendered, _problems = checked()
        if issue is None or rendered is None:
            return HTMLResponse("<p>Preflight runs once the problems above are fixed.</p>")
        try:
            report = run_preflight(project, issue_path, issue=issue, rendered=rendered,
                                   offline=request.query_params.get("full") != "1")
        except NewsletterError as exc:
            return HTMLResponse(f"<p>{html.escape(exc.message)}</p>")
        return HTMLResponse(panel_html(report))

    return Starlette(
        routes=[
            Route("/", page),
            Route("/preflight", preflight),
            Route("/email.html", email_html),
            Route("/email.txt", email_text),
            Route("/version", version),
        ]
    )


MARKS = {"ok": "✓", "info": "✓", "warning": "warning", "error": "error"}


def panel_html(report: Report) -> str:
    """The preflight report as the preview shows it: the CLI's table and words, in HTML.

    One row per check (✓, warning, error or skipped), then one row per finding with its
    item and field; findings that are only worth knowing ("info") are left out, as in the CLI.
    """
    esc = html.escape
    rows = []
    for check in report.checks:
        mark = "skipped" if check.skipped else MARKS[check.severity]
        kind = "skipped" if check.skipped else check.severity
        rows.append(f'<tr class="check"><th scope="row">{esc(check.name)}</th>'
                    f'<td class="mark-{kind}">{mark}</td><td></td><td></td>'
                    f"<td>{esc(check.headline)}</td></tr>")
        for finding in check.findings:
            if finding.severity == "info":
                continue
            rows.append(f'<tr class="finding"><td></td><td class="mark-{finding.severity}">'
                        f"{MARKS[finding.severity]}</td><td>{esc(finding.item)}</td>"
                        f"<td>{esc(finding.field)}</td><td>{esc(finding.advice)}</td></tr>")
    where = "" if not report.offline else (
        " Links, pictures and the sender domain were not checked: use the button below, or "
        "run <code>newsletter preflight FILE</code>.")
    return (f"<p><strong>Preflight: {esc(report.summary_line())}</strong> "
            f"({report.seconds:.1f} s).{where}</p>"
            '<table aria-label="Preflight results"><thead><tr><th scope="col">Check</th>'
            '<th scope="col">Result</th><th scope="col">Item</th><th scope="col">Field</th>'
            '<th scope="col">What to do</th></tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")


def listening_socket(host: str, port: int, tries: int = 20) -> socket.socket:
    """A socket listening on ``port``, or on the next free one of ``tries`` ports after it.

    Bound here rather than by uvicorn, so a busy port gives a plain answer (and the
    next port) instead of uvicorn's "[Errno 98] error while attempting to bind".
    """
    for candidate in range(port, min(port + tries, 65536)):
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        if os.name == "posix":  # as uvicorn does: a just-stopped preview's port is reusable
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                continue
            raise NewsletterError(
                f"Cannot listen on {host}:{candidate}: {exc.strerror or exc}.",
                hint="Use --host 127.0.0.1, or another --port.",
            ) from None
        sock.listen(128)
        return sock
    raise NewsletterError(
        f"Ports {port} to {port + tries - 1} are all in use (another preview may be running).",
        hint="Stop the other preview with Ctrl-C, or choose a port: `newsletter preview FILE "
        "--port 9000`.",
    )


def serve_preview(project: Project, issue_path: Path, sock: socket.socket) -> None:
    """Run the preview server on ``sock`` (see :func:`listening_socket`) until interrupted."""
    # Imported here: uvicorn is only needed when a server actually runs.
    import uvicorn

    config = uvicorn.Config(create_app(project.root, issue_path.resolve()), log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])
