"""Benchmark `newsletter preflight` on the sample issue with 20 links to a local server.

    .venv/bin/python bench/preflight.py            # 5 runs of each
    .venv/bin/python bench/preflight.py --runs 3

A copy of the sample project in a temporary folder, its 8 items and 12 Markdown
links in the intro pointing at a local HTTP server (20 links in all; each answers
after 20 ms), the logo served by it too. Times, median of the runs:

- the full preflight (links, images, SpamAssassin, clients, accessibility, size,
  and the sender domain against a local DNS server), the link cache off;
- --offline, with SpamAssassin, and without it (the 300 ms target of the rest).

Prints a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

from newsletter.preflight import run_preflight  # noqa: E402
from newsletter.preflight.domain import DNS_SERVER_ENV  # noqa: E402
from newsletter.project import Project  # noqa: E402
from tests.preflight_helpers import dns_server, picture, point_at  # noqa: E402
from tests.servers import serve_asgi  # noqa: E402

LOGO = picture(320, 80)


def _app() -> Starlette:
    async def page(_: Request) -> Response:
        await asyncio.sleep(0.02)  # a quick real site
        return Response("<html><body>ok</body></html>", media_type="text/html")

    async def logo(_: Request) -> Response:
        return Response(LOGO, media_type="image/png")

    return Starlette(routes=[Route("/page/{n}", page, methods=["GET", "HEAD"]),
                             Route("/logo.png", logo)])


def _project(folder: Path, base: str) -> Project:
    root = folder / "sample"
    root.mkdir()
    shutil.copyfile(REPO / "newsletter.toml", root / "newsletter.toml")
    for name in ("issues", "templates"):
        shutil.copytree(REPO / name, root / name)
    point_at(root, base, [f"/page/{n}" for n in range(8)])
    issue = root / "issues" / "2021-02-01.yaml"
    extra = " ".join(f"[source {n}]({base}/page/{n + 8})" for n in range(12))
    text = issue.read_text(encoding="utf-8").replace("intro: |\n", f"intro: |\n  {extra}\n", 1)
    issue.write_text(text, encoding="utf-8")
    return Project(root)


def _time(project: Project, runs: int, **options: object) -> tuple[float, object]:
    path = project.issues_dir / "2021-02-01.yaml"
    times, report = [], None
    run_preflight(project, path, use_cache=False, **options)  # type: ignore[arg-type]
    for _ in range(runs):
        started = time.perf_counter()
        report = run_preflight(project, path, use_cache=False, **options)  # type: ignore[arg-type]
        times.append(time.perf_counter() - started)
    return statistics.median(times), report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, serve_asgi(_app()) as base, \
            dns_server() as dns, mock.patch.dict("os.environ", {DNS_SERVER_ENV: dns}):
        project = _project(Path(folder), base)
        full, report = _time(project, args.runs)
        links = report.check("links")  # type: ignore[attr-defined]
        spam = report.check("spam")  # type: ignore[attr-defined]
        offline, _ = _time(project, args.runs, offline=True)
        with mock.patch("newsletter.preflight.spam.shutil.which", lambda _name: None):
            rest, _ = _time(project, args.runs, offline=True)
    print(f"links checked: {links.summary}; spam: {spam.summary or spam.skipped}")
    print(f"spamassassin alone: {spam.seconds:.2f} s")
    print("| run | median |")
    print("|---|---|")
    print(f"| full preflight, 20 links, SpamAssassin | {full:.2f} s |")
    print(f"| --offline, with SpamAssassin | {offline:.2f} s |")
    print(f"| --offline, SpamAssassin left out | {rest * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
