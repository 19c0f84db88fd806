"""Benchmark: the studio, from an edit to the updated preview and diagnostics.

    .venv/bin/python bench/studio.py                 # 50 edits of the sample issue
    .venv/bin/python bench/studio.py --edits 200

Copies the repository's sample project into a temporary folder, starts the studio
(uvicorn, in a thread of this process, on 127.0.0.1) and, for each edit, times:
the form's POST to /autosave (the file written with the round-trip editor, checked
and rendered; the diagnostics come back) plus the GET of the preview that the page
then reloads. Each edit changes the subject and one summary, as typing would.
Prints a Markdown summary for docs/performance.md ("## Studio").
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from _machine import machine  # bench/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
ISSUE = "2021-02-01"


def copy_sample(root: Path) -> Path:
    root.mkdir()
    shutil.copyfile(REPO / "newsletter.toml", root / "newsletter.toml")
    for folder in ("issues", "templates"):
        shutil.copytree(REPO / folder, root / folder)
    return root


def read_form(client: httpx.Client, token: str) -> dict[str, object]:
    """The editor's form as the page fills it in (inputs, textareas, items, hash)."""
    html = client.get(f"/issues/{ISSUE}").text
    form: dict[str, object] = {"csrf_token": token, "editor_id": "bench"}
    for name, value in re.findall(r'<input id="f-[^"]+" name="([^"]+)" type="text" '
                                  r'value="([^"]*)"', html):
        form[name] = value.replace("&#39;", "'").replace("&#34;", '"').replace("&amp;", "&")
    for name, value in re.findall(r'<textarea id="f-[^"]+" name="([^"]+)"[^>]*>(.*?)</textarea>',
                                  html, re.DOTALL):
        form[name] = value.replace("&#39;", "'").replace("&#34;", '"').replace("&amp;", "&")
    form["item"] = re.findall(r'name="item" value="(\d+)"', html.split("</form>")[0])
    form["base_hash"] = re.search(r'name="base_hash" value="([^"]+)"', html).group(1)
    return form


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=50)
    args = parser.parse_args()

    from newsletter.studio import create_app

    with tempfile.TemporaryDirectory() as folder:
        root = copy_sample(Path(folder) / "sample")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(create_app(root), host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        timings: list[float] = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            token = re.search(r'name="csrf_token" value="([^"]+)"',
                              client.get("/").text).group(1)
            form = read_form(client, token)
            summary = str(form["items-1-summary"])
            for number in range(args.edits + 3):  # the first 3 warm the caches
                form["subject"] = f"Weekly Brief no. {number}: leaked police files"
                form["items-1-summary"] = f"{summary} Edit {number}."
                started = time.perf_counter()
                answer = client.post(f"/issues/{ISSUE}/autosave", data=form)
                preview = client.get(f"/issues/{ISSUE}/email.html?v={number}")
                elapsed = time.perf_counter() - started
                assert answer.status_code == 200 and "Saved at" in answer.text, answer.text
                assert f"Edit {number}." in preview.text
                form["base_hash"] = re.search(r'name="base_hash" value="([^"]+)"',
                                              answer.text).group(1)
                if number >= 3:
                    timings.append(elapsed * 1000)
        server.should_exit = True
        thread.join(timeout=10)
    timings.sort()
    median = statistics.median(timings)
    p95 = timings[min(len(timings) - 1, round(0.95 * len(timings)) - 1)]
    print(f"Machine: {machine()}\n")
    print("| edits | median | p95 | slowest |")
    print("| ---: | ---: | ---: | ---: |")
    print(f"| {len(timings)} | {median:.0f} ms | {p95:.0f} ms | {timings[-1]:.0f} ms |")
    print(f"\nTargets: median < 50 ms ({'met' if median < 50 else 'MISSED'}), "
          f"p95 < 150 ms ({'met' if p95 < 150 else 'MISSED'}).")


if __name__ == "__main__":
    main()
