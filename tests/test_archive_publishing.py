"""The archive publishes only what was published (issue 12): sent, or dated before today;
drafts never; and it says which issues it left out, and why."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from click.testing import CliRunner

from newsletter.archive import build_archive
from newsletter.archive.publishing import left_out_reason
from newsletter.cli import main
from newsletter.project import Project, init_project
from tests.plugins.fake_sendgrid import populate
from tests.test_archive_helpers import write_issue

TODAY = dt.date.today()


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _site_text(site: Path) -> str:
    return "".join((site / name).read_text(encoding="utf-8")
                   for name in ("index.html", "feed.xml", "sitemap.xml"))


def test_the_rule():
    today = dt.date(2026, 11, 26)
    assert left_out_reason("a", dt.date(2026, 11, 25), False, (), today) is None
    assert "not sent" in (left_out_reason("a", today, False, (), today) or "")
    assert left_out_reason("a", dt.date(2026, 11, 30), False, {"a"}, today) is None
    assert left_out_reason("a", dt.date(2020, 1, 6), True, {"a"}, today) == "draft: true"


def test_an_unsent_issue_dated_ahead_is_not_published_and_is_named(sample_project: Path):
    ahead = (TODAY + dt.timedelta(days=4)).isoformat()
    write_issue(sample_project, ahead, "Embargoed until Monday")
    result = run("archive", "build", "--no-search")
    assert result.exit_code == 0, result.output
    site = sample_project / "site"
    assert not (site / "issues" / ahead).exists()
    assert ahead not in _site_text(site) and "Embargoed" not in _site_text(site)
    assert (site / "issues" / "2021-02-01" / "index.html").is_file()  # dated long ago
    assert f"Left out {ahead}: not sent to a list yet" in " ".join(result.output.split())
    # The archive looked for sends without making a database.
    assert not (sample_project / "subscribers" / "subscribers.db").exists()


def test_an_issue_is_published_once_sent_to_a_list(sample_project: Path):
    ahead = (TODAY + dt.timedelta(days=3)).isoformat()
    write_issue(sample_project, ahead, "Out early")
    populate(Project(sample_project), "weekly", 2)
    sent = run("send", f"issues/{ahead}.yaml", "--yes", "--allow-placeholders")  # example links
    assert sent.exit_code == 0, sent.output
    result = run("archive", "build", "--no-search")
    assert result.exit_code == 0, result.output
    assert (sample_project / "site" / "issues" / ahead / "index.html").is_file()
    assert "Out early" in _site_text(sample_project / "site")


def test_a_page_published_earlier_is_removed_when_left_out(sample_project: Path):
    site = sample_project / "site"
    ahead = TODAY + dt.timedelta(days=2)
    write_issue(sample_project, ahead.isoformat(), "Written early")
    project = Project(sample_project)
    build_archive(project, site, search=False, today=ahead + dt.timedelta(days=1))
    assert (site / "issues" / ahead.isoformat()).exists()
    report = build_archive(project, site, search=False, today=TODAY)
    assert report.pages_removed == [f"issues/{ahead.isoformat()}/index.html"]
    assert (ahead.isoformat(), left_out_reason("", ahead, False, (), TODAY)) in report.left_out


def test_inits_example_is_never_published(tmp_path: Path):
    project = init_project(tmp_path / "brief")
    report = build_archive(project, tmp_path / "brief" / "site", search=False,
                           today=TODAY + dt.timedelta(days=30))
    assert report.published == 0 and report.drafts == 1
    assert [reason for _, reason in report.left_out] == ["draft: true"]


def test_studio_photos_are_published_with_their_issue_and_not_before(sample_project: Path):
    media = sample_project / "media"
    media.mkdir()
    shown, embargoed, unused = "a" * 20 + ".jpg", "b" * 20 + ".jpg", "c" * 20 + ".png"
    for name in (shown, embargoed, unused):
        (media / name).write_bytes(b"\xff\xd8 photo " + name.encode())
    past = (TODAY - dt.timedelta(days=3)).isoformat()
    ahead = (TODAY + dt.timedelta(days=4)).isoformat()
    write_issue(sample_project, past, "Published",
                images=[(f"https://news.example.org/media/{shown}", "A protest")])
    write_issue(sample_project, ahead, "Embargoed",
                images=[(f"https://news.example.org/media/{embargoed}", "A court")])
    result = run("archive", "build", "--no-search")
    assert result.exit_code == 0, result.output
    published = sample_project / "site" / "media"
    assert (published / shown).read_bytes() == (media / shown).read_bytes()
    assert not (published / embargoed).exists() and not (published / unused).exists()
