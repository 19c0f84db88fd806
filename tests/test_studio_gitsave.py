"""[studio] git_commit: each Save in the studio is a commit of exactly the saved issue file."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from newsletter.gitsave import author, commit_file
from newsletter.project import Project
from newsletter.store import Database, open_project_database
from newsletter.store.users import add_user
from newsletter.studio import create_app, hosted_app
from tests.servers import serve_asgi
from tests.test_studio import ISSUE, Studio
from tests.test_studio_hosted import PASSWORD, SECRET, log_in

ISSUE_FILE = f"issues/{ISSUE}.yaml"


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                          check=True, timeout=30).stdout


def enable(root: Path, on: bool = True) -> None:
    toml = root / "newsletter.toml"
    text = toml.read_text(encoding="utf-8")
    assert "[studio]" not in text
    toml.write_text(text + f"\n[studio]\ngit_commit = {'true' if on else 'false'}\n",
                    encoding="utf-8")


@pytest.fixture
def repo(sample_project: Path) -> Path:
    """The sample project as a git repository, everything committed once."""
    git(sample_project, "init", "-q")
    git(sample_project, "config", "user.name", "Local Person")
    git(sample_project, "config", "user.email", "local@example.org")
    git(sample_project, "config", "commit.gpgsign", "false")
    (sample_project / "plan.txt").write_text("the plan\n", encoding="utf-8")
    git(sample_project, "add", "-A")
    git(sample_project, "commit", "-q", "-m", "start")
    return sample_project


@contextmanager
def local_studio(root: Path) -> Iterator[Studio]:
    with serve_asgi(create_app(root)) as url, \
            httpx.Client(base_url=url, timeout=30, follow_redirects=True) as client:
        yield Studio(client, root)


def save_with_new_subject(studio: Studio, subject: str) -> httpx.Response:
    form = studio.form()
    form["subject"] = subject
    form["action"] = "save"
    answer = studio.client.post(f"/issues/{ISSUE}", data=form)
    assert answer.status_code == 200
    assert subject in (studio.root / ISSUE_FILE).read_text(encoding="utf-8")
    return answer


def commits(root: Path) -> list[str]:
    return git(root, "log", "--format=%an <%ae>|%s").splitlines()


def test_a_save_commits_only_the_issue_file_with_git_s_own_identity(repo: Path) -> None:
    enable(repo)
    git(repo, "commit", "-q", "-am", "setting on")
    # Other work in progress, staged and not: none of it may enter the studio's commit.
    (repo / "plan.txt").write_text("changed\n", encoding="utf-8")
    (repo / "notes.txt").write_text("staged\n", encoding="utf-8")
    git(repo, "add", "notes.txt")
    with local_studio(repo) as studio:
        answer = save_with_new_subject(studio, "A subject saved by the studio")
        assert "not committed" not in answer.text
    log = commits(repo)
    assert log[0] == f"Local Person <local@example.org>|Studio: save {ISSUE_FILE}"
    assert len(log) == 3
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == [ISSUE_FILE]
    status = git(repo, "status", "--porcelain", "--untracked-files=no").splitlines()
    assert sorted(status) == [" M plan.txt", "A  notes.txt"]


def test_with_the_setting_off_a_save_makes_no_commit(repo: Path) -> None:
    enable(repo, on=False)
    git(repo, "commit", "-q", "-am", "setting off")
    with local_studio(repo) as studio:
        save_with_new_subject(studio, "Not committed")
    assert len(commits(repo)) == 2
    status = git(repo, "status", "--porcelain", "--untracked-files=no")
    assert status.split() == ["M", ISSUE_FILE]


def test_outside_a_repository_the_save_works_and_the_page_says_why_no_commit(
        sample_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A git repository above the temporary folder would count: stop the search here.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(sample_project.parent))
    enable(sample_project)
    with local_studio(sample_project) as studio:
        answer = save_with_new_subject(studio, "Saved without git")
    assert "The save worked, but it was not committed to git" in answer.text
    assert "not in a git repository" in answer.text
    assert "Traceback" not in answer.text


@pytest.fixture
def database(repo: Path) -> Iterator[Database]:
    db = open_project_database(Project(repo))
    with db.transaction() as session:
        add_user(session, "ed@example.org", PASSWORD, "editor")
    yield db
    db.dispose()


def test_hosted_a_save_is_authored_by_the_logged_in_user(repo: Path,
                                                         database: Database) -> None:
    enable(repo)
    git(repo, "commit", "-q", "-am", "setting on")
    app = hosted_app(Project(repo), database, SECRET, extra_hosts=("127.0.0.1",))
    with serve_asgi(app) as url, \
            httpx.Client(base_url=url, timeout=30, follow_redirects=True) as client:
        assert log_in(client, "ed@example.org").status_code == 200
        save_with_new_subject(Studio(client, repo), "Saved by Ed")
    author_line, committer = git(repo, "log", "-1", "--format=%an <%ae>|%cn").strip().split("|")
    assert author_line == "ed@example.org <ed@example.org>"
    assert committer == "Local Person"
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == [ISSUE_FILE]


def test_a_refused_commit_is_a_note_not_an_error(repo: Path) -> None:
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'error: commits are closed today' >&2\nexit 1\n",
                    encoding="utf-8")
    hook.chmod(0o755)
    path = repo / ISSUE_FILE
    path.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    result = commit_file(repo, path)
    assert not result.committed
    assert result.note.endswith("git said: error: commits are closed today")
    assert len(commits(repo)) == 1


def test_an_unchanged_file_makes_no_commit_and_no_note(repo: Path) -> None:
    result = commit_file(repo, repo / ISSUE_FILE)
    assert result == type(result)(False, "")
    assert len(commits(repo)) == 1


def test_without_git_the_note_says_so(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(repo / "no-such-folder"))
    result = commit_file(repo, repo / ISSUE_FILE)
    assert not result.committed and "git is not installed" in result.note


def test_the_author_line_cannot_be_bent_by_odd_characters() -> None:
    assert author("", "ed@example.org") == "ed@example.org <ed@example.org>"
    assert author("Ed <x>\nY", "ed@example.org>") == "Ed xY <ed@example.org>"
