"""Commit one saved file to git: the studio's ``[studio] git_commit`` setting.

One job: :func:`commit_file` records exactly one file (never other changes in the work
tree or the index) as a commit, and says in plain words why when it could not.
Git runs without a shell, with a time limit and without ever asking for a password.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

TIMEOUT_SECONDS = 20
_LOCK = threading.Lock()  # two saves at once would fight over git's index.lock
_UNSAFE = re.compile(r"[<>\x00-\x1f]")


@dataclass(frozen=True)
class CommitResult:
    """What happened: ``committed`` is True when a commit was made.

    ``note`` is empty when all went well (a commit, or nothing had changed since the
    last one); otherwise it says, for the person saving, why no commit was made.
    """

    committed: bool
    note: str = ""


class _GitFailed(Exception):
    def __init__(self, note: str) -> None:
        super().__init__(note)
        self.note = note


def author(name: str, email: str) -> str:
    """``Name <email>`` for git's --author; the email stands in for an unknown name."""
    email = _UNSAFE.sub("", email).strip()
    name = _UNSAFE.sub("", name).strip() or email
    return f"{name} <{email}>"


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        return subprocess.run(["git", *args], cwd=folder, env=env, capture_output=True,
                              text=True, timeout=TIMEOUT_SECONDS, check=False,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise _GitFailed("git is not installed on this computer (or not on its PATH). "
                         "Install git, or set git_commit = false in [studio] of "
                         "newsletter.toml.") from None
    except subprocess.TimeoutExpired:
        raise _GitFailed(f"git did not finish within {TIMEOUT_SECONDS} seconds (is it "
                         "waiting for a password or a signing key?). Try the commit "
                         "yourself in a terminal.") from None
    except OSError as exc:
        raise _GitFailed(f"git could not be started ({exc.strerror}).") from None


def _said(process: subprocess.CompletedProcess[str]) -> str:
    """Git's complaint in plain words (the first line that says what is wrong)."""
    text = (process.stderr or process.stdout or "").strip()
    if "tell me who you are" in text or "auto-detect" in text or "empty ident" in text:
        return ('git does not know who you are. In the project folder run: git config '
                'user.name "Your Name" and git config user.email you@example.org, then '
                "save again.")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    important = [line for line in lines if line.lower().startswith(("fatal:", "error:"))]
    said = (important or lines or [f"exit status {process.returncode}"])[0][:300]
    return f"git said: {said}"


def commit_file(root: Path, path: Path, author_line: str | None = None) -> CommitResult:
    """Commit exactly ``path`` (inside ``root``) with the message "Studio: save <path>".

    ``author_line`` is ``Name <email>`` (see :func:`author`); None keeps git's own
    configured identity. Never raises for git's troubles: the result's note says why.
    """
    path = path.resolve()
    try:
        shown = path.relative_to(root.resolve()).as_posix()
    except ValueError:
        shown = path.name
    folder = path.parent
    prefix = "The save worked, but it was not committed to git: "
    try:
        with _LOCK:
            inside = _git(folder, "rev-parse", "--is-inside-work-tree")
            if inside.returncode != 0 or inside.stdout.strip() != "true":
                return CommitResult(False, prefix + "the project folder is not in a git "
                                    "repository. Run git init there, or set git_commit = "
                                    "false in [studio] of newsletter.toml.")
            added = _git(folder, "add", "--", str(path))
            if added.returncode != 0:
                return CommitResult(False, prefix + _said(added))
            unchanged = _git(folder, "diff", "--cached", "--quiet", "--", str(path))
            if unchanged.returncode == 0:
                return CommitResult(False)  # the file is as the last commit has it
            command = ["commit", "--only", "-m", f"Studio: save {shown}"]
            if author_line:
                command.append(f"--author={author_line}")
            done = _git(folder, *command, "--", str(path))
            if done.returncode != 0:
                return CommitResult(False, prefix + _said(done))
    except _GitFailed as failed:
        return CommitResult(False, prefix + failed.note)
    return CommitResult(True)
