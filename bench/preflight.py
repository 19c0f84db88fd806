"""Benchmark `newsletter preflight` on the sample issue with 20 links to a local server.

    .venv/bin/python bench/preflight.py            # 5 runs of each
    .venv/bin/python bench/preflight.py --runs 3

A copy of the sample project in a temporary folder, its 8 items and 12 Markdown
links in the intro pointing at a local HTTP server (20 links in all; each answers
after 20 ms), the logo served by it too; the sender domain read from a local DNS
server; the link cache off. Both routes of the spam check are timed: a cold
`spamassassin -L -t` per run, and spamc to a spamd the bench starts on 127.0.0.1 (as a
host would run it), each with its floor (the tool alone on the same message). Also a
new `newsletter preflight --offline` process, with the floor of its imports.

Prints a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

from newsletter.preflight import Report, run_preflight  # noqa: E402
from newsletter.preflight.domain import DNS_SERVER_ENV  # noqa: E402
from newsletter.preflight.runner import prepare  # noqa: E402
from newsletter.preflight.spam import SPAMD_ENV  # noqa: E402
from newsletter.project import Project  # noqa: E402
from tests.preflight_helpers import (  # noqa: E402
    dns_server,
    picture,
    point_at,
    spamd_binary,
    spamd_server,
)
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


def _median(runs: int, work: Callable[[], object]) -> float:
    work()  # warm up: caches, the first render, a spamd child
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _preflight(project: Project, **options: object) -> Callable[[], Report]:
    path = project.issues_dir / "2021-02-01.yaml"
    return lambda: run_preflight(project, path, use_cache=False, **options)  # type: ignore[arg-type]


def _tool(command: list[str], eml: bytes) -> Callable[[], object]:
    return lambda: subprocess.run(command, input=eml, capture_output=True, check=True)


def _cli(project: Project, env: dict[str, str]) -> Callable[[], object]:
    command = [str(REPO / ".venv" / "bin" / "newsletter"), "preflight",
               "issues/2021-02-01.yaml", "--offline", "--json"]
    return lambda: subprocess.run(command, cwd=project.root, env=env, capture_output=True,
                                  check=False)


def _load() -> str:
    return " ".join(os.getloadavg().__repr__().strip("()").split(", ")[:1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    spamd = spamd_binary()
    if spamd is None or shutil.which("spamc") is None or shutil.which("spamassassin") is None:
        sys.exit("bench/preflight.py needs spamassassin, spamd and spamc: "
                 "sudo apt-get install spamassassin spamd spamc")
    rows: list[tuple[str, float]] = []
    load_before = _load()
    with tempfile.TemporaryDirectory() as folder, serve_asgi(_app()) as base, \
            dns_server() as dns, spamd_server(spamd) as spamd_at, \
            mock.patch.dict("os.environ", {DNS_SERVER_ENV: dns}):
        project = _project(Path(folder), base)
        report = _preflight(project)()
        links, spam = report.check("links"), report.check("spam")
        eml = prepare(project, project.issues_dir / "2021-02-01.yaml").eml
        host, port = spamd_at.rsplit(":", 1)
        # the floors: the spam check's own tool, alone, on the same message
        rows.append(("`spamassassin -L -t` alone (floor of the cold route)",
                     _median(args.runs, _tool(["spamassassin", "-L", "-t"], eml))))
        rows.append(("`spamc -R` alone, to the bench's spamd (floor of the spamd route)",
                     _median(args.runs, _tool(["spamc", "-d", host, "-p", port, "-R"], eml))))
        rows.append(("full preflight, 20 links, cold `spamassassin`",
                     _median(args.runs, _preflight(project))))
        rows.append(("`--offline`, cold `spamassassin`",
                     _median(args.runs, _preflight(project, offline=True))))
        rows.append(("`--offline`, no spam check (the studio's after-save run)",
                     _median(args.runs, _preflight(project, offline=True, spam=False))))
        env = {**os.environ, SPAMD_ENV: spamd_at}
        with mock.patch.dict("os.environ", {SPAMD_ENV: spamd_at}):
            rows.append(("full preflight, 20 links, spamd (`NEWSLETTER_SPAMD`)",
                         _median(args.runs, _preflight(project))))
            rows.append(("`--offline`, spamd", _median(args.runs, _preflight(project,
                                                                              offline=True))))
        rows.append(("`newsletter preflight --offline --json`, a new process, spamd",
                     _median(args.runs, _cli(project, env))))
        rows.append(("`python -c 'import newsletter.cli.preflight'` (floor of a new process)",
                     _median(args.runs, _tool([sys.executable, "-c",
                                               "import newsletter.cli.preflight"], b""))))
    print(f"links checked: {links.summary}; spam: {spam.summary or spam.skipped}")
    print(f"load average (1 min) before: {load_before}, after: {_load()}; "
          f"median of {args.runs} runs, after one warm-up run each")
    print("| run | median |")
    print("|---|---|")
    for name, seconds in rows:
        shown = f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1000:.0f} ms"
        print(f"| {name} | {shown} |")


if __name__ == "__main__":
    main()
