"""Benchmark `newsletter archive build`: ten years of weekly issues, full and incremental.

Generates 520 weekly issues (8 realistic items each) in a temporary project, then
times a full build into an empty folder and a rebuild after one issue changed,
each the median of several runs. With --record, writes the figures into the
"## Web archive" section of docs/performance.md.

    .venv/bin/python bench/archive.py            # print figures
    .venv/bin/python bench/archive.py --record   # and record them
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _machine import machine  # noqa: E402  (bench/ is on sys.path when run as a script)

from newsletter.archive import build_archive  # noqa: E402
from newsletter.archive.site import BuildReport  # noqa: E402
from newsletter.project import Project  # noqa: E402

SECTION = "## Web archive"
VOCABULARY = (
    "government report camps detention rights families testimony evidence court sanctions "
    "forced labour supply chain companies cotton solar surveillance police database leaked "
    "files journalists researchers statement parliament minister resolution genocide "
    "crimes humanity Uyghur Kazakh Turkic region authorities officials international "
    "investigation satellite images mosque cemetery culture language schools children "
    "border travel passport relatives abroad diaspora activists campaign petition vote "
    "import ban customs shipment brand audit transparency accountability United Nations "
    "human rights council experts recommendation response denial propaganda interview"
)
WORDS = VOCABULARY.split()
SOURCES = ["The Guardian", "Reuters", "AP", "BBC", "HRW", "Amnesty", "NYT", "Der Spiegel"]
SECTIONS = [None, None, "Statements", "In the news", "Analysis"]


def sentence(rng: random.Random, low: int = 12, high: int = 24) -> str:
    words = rng.choices(WORDS, k=rng.randint(low, high))
    return " ".join(words).capitalize() + "."


def issue_text(rng: random.Random, number: int, date: dt.date) -> str:
    lines = [
        f"date: {date.isoformat()}",
        f"number: {number}",
        f'subject: "Weekly Brief {number}: {sentence(rng, 5, 9)[:-1]}"',
        f'preheader: "{sentence(rng, 10, 16)}"',
        "intro: |",
        f"  Good morning. {sentence(rng)} {sentence(rng)}",
        "items:",
    ]
    for index in range(8):
        published = date - dt.timedelta(days=rng.randint(1, 8))
        summary = " ".join(sentence(rng) for _ in range(rng.randint(3, 6)))
        lines += [
            f'  - title: "{sentence(rng, 6, 12)[:-1]}"',
            f"    url: https://example.org/{date.year}/{number}/story-{index}",
            f"    source: {rng.choice(SOURCES)}",
            f"    published: {published.isoformat()}",
            f"    photo_credit: {rng.choice(SOURCES)}",
        ]
        section = SECTIONS[min(index // 2, len(SECTIONS) - 1)]
        if section:
            lines.append(f"    section: {section}")
        if index == 0:
            lines += [f"    image: https://example.org/img/{number}.jpg",
                      "    image_alt: A photograph for the story"]
        lines += ["    summary: |", f"      {summary}"]
    return "\n".join(lines) + "\n"


def make_project(root: Path, issues: int, seed: int = 1) -> Project:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / "newsletter.toml", root / "newsletter.toml")
    (root / "issues").mkdir(exist_ok=True)
    first = dt.date(2016, 1, 4)
    for number in range(1, issues + 1):
        date = first + dt.timedelta(weeks=number - 1)
        (root / "issues" / f"{date.isoformat()}.yaml").write_text(
            issue_text(rng, number, date), encoding="utf-8"
        )
    return Project(root)


def timed(project: Project, out: Path) -> tuple[float, BuildReport]:
    start = time.perf_counter()
    report = build_archive(project, out)
    return time.perf_counter() - start, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=520)
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement")
    parser.add_argument("--record", action="store_true", help="write docs/performance.md")
    args = parser.parse_args()

    rows: list[tuple[str, list[float], list[float], str]] = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="archive-bench-") as temp:
        project = make_project(Path(temp) / "project", args.issues)
        full, full_search = [], []
        for run in range(args.runs):
            seconds, report = timed(project, Path(temp) / f"site-{run}")
            full.append(seconds)
            full_search.append(report.timings.get("search", 0.0))
            assert len(report.pages_written) == args.issues, report
        rows.append(("Full build into an empty folder", full, full_search, "< 15 s"))
        out = Path(temp) / "site-0"
        files = project.issue_files()
        latest_year = files[-1].name[:4]
        older = [f for f in files if not f.name.startswith(latest_year)]
        rng = random.Random(2)
        for label, pool in (("an older issue", older), ("the newest issue", files[-1:])):
            times, search = [], []
            for run in range(args.runs):
                changed = rng.choice(pool)
                text = changed.read_text(encoding="utf-8")
                changed.write_text(
                    text.replace("summary: |\n      ", f"summary: |\n      Edit {run}. ", 1),
                    encoding="utf-8",
                )
                seconds, report = timed(project, out)
                times.append(seconds)
                search.append(report.timings.get("search", 0.0))
                assert report.pages_written == [f"issues/{changed.stem}/index.html"], report
            rows.append((f"Rebuild after one change to {label}", times, search, "< 2 s"))
        times, search = [], []
        next_date = dt.date.fromisoformat(files[-1].stem) + dt.timedelta(weeks=1)
        for run in range(args.runs):
            added = project.issues_dir / f"{next_date.isoformat()}.yaml"
            added.write_text(issue_text(random.Random(run), args.issues + 1, next_date), "utf-8")
            seconds, report = timed(project, out)
            times.append(seconds)
            search.append(report.timings.get("search", 0.0))
            assert len(report.pages_written) == 2, report  # the new page and its neighbour
            added.unlink()
            timed(project, out)
        rows.append(("Rebuild after adding next week's issue", times, search, "< 2 s"))
        nothing, report = timed(project, out)
        assert not report.pages_written and report.search_pages is None, report
        rows.append(("Rebuild with nothing changed", [nothing], [0.0], ""))

    load = f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    print(f"1-minute load average: {load}")
    for label, times, search, _ in rows:
        print(f"{label}: median {statistics.median(times):.2f} s "
              f"(Pagefind {statistics.median(search):.2f} s); runs "
              + ", ".join(f"{t:.2f}" for t in times))
    if args.record:
        record(args, rows, load)


def record(args: argparse.Namespace,
           rows: list[tuple[str, list[float], list[float], str]], load: str) -> None:
    today = dt.date.today().isoformat()
    table = "\n".join(
        f"| {label} | {statistics.median(times):.2f} s | {statistics.median(search):.2f} s "
        f"| {target} | {', '.join(f'{t:.2f}' for t in times)} |"
        for label, times, search, target in rows
    )
    section = f"""{SECTION}

Measured by `bench/archive.py` on {today}: {machine()}.
Command: `.venv/bin/python bench/archive.py --runs {args.runs} --record`
({args.issues} generated weekly issues over ten years, 8 items each, in a temporary project;
each figure is the median of the runs listed, timed around `build_archive()`;
1-minute load average {load}; above 0 means other work shared the CPUs).

| Build | Median | Of which Pagefind | Target | Runs (s) |
| --- | --- | --- | --- | --- |
{table}

A full build spends most of its time reading the YAML issue files (on every CPU)
and rendering pages. A rebuild reads only changed files, writes only pages whose
inputs changed (the issue, and its neighbours when the previous/next link text
changed) and regenerates index, feed and sitemap. Pagefind has no incremental
mode, so the search index is split into bundles of three calendar years and only
the bundle holding a changed page is indexed again (at most about 156 pages). The
search page merges the bundles (Pagefind's mergeIndex); each costs readers one
download of Pagefind's engine (about 70 KB) the first time they search.
"""
    path = REPO / "docs" / "performance.md"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Performance\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    print(f"Recorded in {path}")


if __name__ == "__main__":
    main()
