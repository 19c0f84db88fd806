"""The Preflight panel in headless Chromium, through labels and roles only.

Set NEWSLETTER_SCREENSHOTS=1 to refresh docs/images/studio-preflight.png.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.preflight.domain import DNS_SERVER_ENV
from newsletter.studio import create_app
from tests.preflight_helpers import dns_server, point_at, web_server
from tests.servers import serve_asgi
from tests.tools import require_binary

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "images"
ISSUE = "2021-02-01"


@pytest.fixture
def studio_url(sample_project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A studio on the sample project, whose last item links to a page answering 404."""
    monkeypatch.setenv("NEWSLETTER_PREFLIGHT_TIMEOUT", "5")
    with web_server() as site, dns_server() as dns:
        monkeypatch.setenv(DNS_SERVER_ENV, dns)
        point_at(sample_project, site, [f"/ok?n={n}" for n in range(7)] + ["/status/404"])
        with serve_asgi(create_app(sample_project)) as url:
            yield url


def test_the_panel_after_a_save_and_a_broken_link_after_the_button(  # type: ignore[no-untyped-def]
        new_page, studio_url: str) -> None:
    require_binary("spamassassin", "sudo apt-get install -y spamassassin")
    page = new_page(1280, 1400)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{studio_url}/issues/{ISSUE}")
    panel = page.get_by_role("region", name="Preflight")
    results = panel.get_by_role("table", name="Preflight results")
    results.wait_for()

    # A save: the quick checks run again; the slow ones wait for the button.
    page.get_by_label("Preheader").fill("Solar news, checked before it is sent.")
    page.get_by_role("status").filter(has_text=re.compile("^Saved at")).wait_for()
    not_yet = results.get_by_role("row").filter(has_text="Not checked yet")
    not_yet.first.wait_for()
    assert not_yet.count() == 4  # links, pictures, spam score, sender domain
    assert results.get_by_role("row").filter(has_text="Accessibility").count() == 1

    # The button: every link is fetched; the one answering 404 is an error on its field.
    panel.get_by_role("button", name="Run full preflight").click()
    broken = results.get_by_role("row").filter(has_text="answers 404")
    broken.wait_for(timeout=90_000)
    assert broken.get_by_role("cell", name="error").count() == 1
    assert broken.get_by_role("cell", name="items[7].url").count() == 1
    assert not_yet.count() == 0
    assert "Traceback" not in panel.inner_text()
    assert errors == []
    if os.environ.get("NEWSLETTER_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")  # so the box is in the page's coordinates
        box, row = panel.bounding_box(), broken.bounding_box()
        top = max(box["y"], row["y"] - 240)  # the broken link and the rows just above it
        page.screenshot(path=str(SCREENSHOTS / "studio-preflight.png"), full_page=True,
                        clip={"x": box["x"], "y": top, "width": box["width"],
                              "height": min(box["y"] + box["height"] - top, 620)})
