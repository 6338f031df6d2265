"""The console in Chromium asks for nothing that is missing: its icon is its own."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser import Live, chromium, live, page_factory

__all__ = ["chromium", "live", "page_factory"]  # fixtures


@pytest.mark.slow
def test_the_sign_in_page_loads_without_a_missing_file(live: Live, page_factory: Any) -> None:
    page = page_factory()
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status >= 400 else None)
    page.on("console", lambda m: missing.append(m.text) if m.type == "error" else None)

    page.goto(f"{live.base}/staff/signin")
    page.wait_for_load_state("networkidle")

    assert missing == []
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert icon == "/staff/static/icon.svg"
