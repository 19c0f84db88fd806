"""Planning a send reads the issue file once and renders it once."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import newsletter.issue
import newsletter.render
from newsletter.delivery.planning import SendOptions, SendSettings, plan_send
from newsletter.project import Project

ISSUE = Path("issues/2021-02-01.yaml")


def count_calls(monkeypatch: pytest.MonkeyPatch, original: Callable[..., Any],
                calls: list[Any]) -> None:
    """Wrap ``original`` wherever a newsletter module holds it, recording each call's result.

    Patching every binding (not just the defining module) catches callers that
    imported the function by name.
    """
    def counted(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        calls.append(result)
        return result

    patched = 0
    for name, module in list(sys.modules.items()):
        if name == "newsletter" or name.startswith("newsletter."):
            for attribute, value in list(vars(module).items()):
                if value is original:
                    monkeypatch.setattr(module, attribute, counted)
                    patched += 1
    assert patched, f"{original.__name__} is bound nowhere"


@pytest.mark.parametrize("options", [
    {"list_slug": "weekly", "transport": "sendgrid", "dry_run": True},
    {"transport": "outbox", "test_addresses": ("ann@example.org",)},
], ids=["dry-run", "test"])
def test_plan_send_parses_and_renders_the_issue_once(send_project: Project,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      options: dict[str, Any]) -> None:
    parsed: list[Any] = []
    rendered: list[Any] = []
    count_calls(monkeypatch, newsletter.issue.check_file, parsed)
    count_calls(monkeypatch, newsletter.render.render_email, rendered)

    plan = plan_send(send_project, SendOptions(ISSUE, **options), SendSettings(batch_size=10))

    assert len(parsed) == 1, "the issue file was parsed more than once"
    assert len(rendered) == 1, "the issue was rendered more than once"
    # The one parse and render are the ones the send uses.
    assert plan.issue is parsed[0].issue
    assert plan.rendered is rendered[0]
