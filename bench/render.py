"""Median time to render an issue end to end, against the official MJML compiler.

Usage: .venv/bin/python bench/render.py [--runs 50]

Renders the sample issue (8 items) and a generated 40-item issue through the
whole pipeline (Jinja2 → MJML → mjml-python → premailer → HTML, plus the text
part), and times each stage. In the same run, the official Node.js `mjml`
(bench/node_modules, installed by `make bench`) compiles the same MJML in one
warm process, for comparison with mjml-python's compile step.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import machine  # bench/ is on sys.path when run as a script
from mjml import mjml2html

from newsletter.issue import Issue, load_issue
from newsletter.markdown_format import _markdown_tokens
from newsletter.mjml_html import mjml_to_html
from newsletter.project import Project, init_project
from newsletter.render import render_email

ROOT = Path(__file__).resolve().parent.parent
NODE_MJML = ROOT / "bench" / "node_modules" / "mjml"


def median_ms(action, runs: int) -> float:  # type: ignore[no-untyped-def]
    action()  # warm caches (templates, CSS parsing)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def cold_render(project: Project, issue: Issue) -> None:
    """Render as for a new issue: the Markdown cache starts empty (templates stay compiled)."""
    _markdown_tokens.cache_clear()
    render_email(project, issue)


def forty_item_issue(folder: Path) -> Path:
    items = "".join(
        f"""  - title: Story number {n} about the week's events, in a headline of usual length
    url: https://example.org/news/{n}
    source: The Example Times
    published: 2026-01-0{1 + n % 4}
    photo_credit: Reuters
    summary: |
      A summary of two or three sentences, as comms staff write them. It says what
      happened, who said it, and why it matters to the people who read this brief.
"""
        for n in range(40)
    )
    path = folder / "issues" / "2026-01-05.yaml"
    path.write_text(
        "date: 2026-01-05\nsubject: Forty stories\npreheader: A long issue.\n"
        f"intro: A very full week.\nitems:\n{items}",
        encoding="utf-8",
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sample = Project(ROOT)
        big_project = init_project(Path(tmp) / "big")
        cases = {
            "sample issue (8 items)": (sample, ROOT / "issues" / "2021-02-01.yaml"),
            "40-item issue": (big_project, forty_item_issue(big_project.root)),
        }
        rows = []
        mjml_files = []
        for label, (project, path) in cases.items():
            issue = load_issue(path, project.issue_files())
            rendered = render_email(project, issue)
            mjml_file = Path(tmp) / f"{len(mjml_files)}.mjml"
            mjml_file.write_text(rendered.mjml, encoding="utf-8")
            mjml_files.append(str(mjml_file))
            rows.append({
                "case": label,
                "html_kb": round(rendered.html_bytes / 1024, 1),
                "end_to_end_ms": median_ms(
                    lambda p=project, i=issue: cold_render(p, i), args.runs),
                "mjml_python_ms": median_ms(
                    lambda m=rendered.mjml: mjml2html(m, fonts={}), args.runs),
                "compile_and_inline_ms": median_ms(
                    lambda m=rendered.mjml: mjml_to_html(m), args.runs),
            })
        node = shutil.which("node")
        if node and NODE_MJML.exists():
            out = subprocess.run(
                [node, str(ROOT / "bench" / "mjml_compile.js"), str(args.runs), *mjml_files],
                capture_output=True, text=True, check=True, cwd=ROOT / "bench",
            ).stdout
            node_times = json.loads(out)
            for row, file in zip(rows, mjml_files, strict=True):
                row["node_mjml_ms"] = node_times[file]
        else:
            print("bench/node_modules/mjml is missing: run `make bench`", file=sys.stderr)
    print(f"Machine: {machine()}; median of {args.runs} runs each")
    header = ("case", "end_to_end_ms", "compile_and_inline_ms", "mjml_python_ms",
              "node_mjml_ms", "html_kb")
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(
            f"{row.get(k):.2f}" if isinstance(row.get(k), float) else str(row.get(k, "n/a"))
            for k in header))


if __name__ == "__main__":
    main()
