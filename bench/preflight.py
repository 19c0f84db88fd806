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
from newsletter.preflight.spam import NO_LEARNING, SPAMD_ENV  # noqa: E402
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


def _interleaved(runs: int, variants: list[tuple[str, Callable[[], object]]]
                 ) -> list[tuple[str, float, float]]:
    """(name, median, fastest) of each variant, run in turn round after round, so that the
    other helpers' load weighs on all of them alike; one warm-up round first."""
    times: dict[str, list[float]] = {name: [] for name, _ in variants}
    for round_ in range(runs + 1):
        for name, work in variants:
            started = time.perf_counter()
            work()
            if round_:  # round 0 warms the caches, the first render, a spamd child
                times[name].append(time.perf_counter() - started)
    return [(name, statistics.median(times[name]), min(times[name])) for name, _ in variants]


def _with_env(env: dict[str, str], work: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        with mock.patch.dict("os.environ", env):
            return work()
    return run


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
    return f"{os.getloadavg()[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    spamd = spamd_binary()
    if spamd is None or shutil.which("spamc") is None or shutil.which("spamassassin") is None:
        sys.exit("bench/preflight.py needs spamassassin, spamd and spamc: "
                 "sudo apt-get install spamassassin spamd spamc")
    load_before = _load()
    with tempfile.TemporaryDirectory() as folder, serve_asgi(_app()) as base, \
            dns_server() as dns, spamd_server(spamd) as spamd_at, \
            mock.patch.dict("os.environ", {DNS_SERVER_ENV: dns}):
        project = _project(Path(folder), base)
        report = _preflight(project)()
        links, spam = report.check("links"), report.check("spam")
        eml = prepare(project, project.issues_dir / "2021-02-01.yaml").eml
        host, port = spamd_at.rsplit(":", 1)
        spamd_env = {SPAMD_ENV: spamd_at}
        rows = _interleaved(args.runs, [
            # the floors: the spam check's own tool, alone, on the same message
            ("`spamassassin -L -t --cf='bayes_auto_learn 0'` alone (floor of the cold route)",
             _tool(["spamassassin", "-L", "-t", NO_LEARNING], eml)),
            ("`spamc -R` alone, to the bench's spamd (floor of the spamd route)",
             _tool(["spamc", "-d", host, "-p", port, "-R"], eml)),
            ("full preflight, 20 links, cold `spamassassin`", _preflight(project)),
            ("full preflight, 20 links, spamd (`NEWSLETTER_SPAMD`)",
             _with_env(spamd_env, _preflight(project))),
            ("`--offline`, cold `spamassassin`", _preflight(project, offline=True)),
            ("`--offline`, spamd", _with_env(spamd_env, _preflight(project, offline=True))),
            ("`--offline`, no spam check (the studio's after-save run)",
             _preflight(project, offline=True, spam=False)),
            ("`newsletter preflight --offline --json`, a new process, spamd",
             _cli(project, {**os.environ, **spamd_env})),
            ("`python -c 'import newsletter.cli.preflight'` (floor of a new process)",
             _tool([sys.executable, "-c", "import newsletter.cli.preflight"], b"")),
        ])
    print(f"links checked: {links.summary}; spam: {spam.summary or spam.skipped}")
    print(f"load average (1 min) before: {load_before}, after: {_load()}; {args.runs} "
          "rounds of every run in turn, after a warm-up round")
    print("| run | median | fastest |")
    print("|---|---:|---:|")
    for name, median, fastest in rows:
        print(f"| {name} | {_shown(median)} | {_shown(fastest)} |")


def _shown(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1000:.0f} ms"


if __name__ == "__main__":
    main()
