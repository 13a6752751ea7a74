"""The API's own docs (Swagger UI at /docs, ReDoc at /redoc) render in Chromium with every
request to anywhere but the API refused: their assets come from the fastapi-offline wheel."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route

from audotics.settings import Settings
from tests.serving.test_serving_support import live_api
from tests.support import free_port


@pytest.fixture(scope="module")
def base_url(isolated_platform) -> Iterator[str]:
    settings: Settings = isolated_platform("serving_docs")
    with live_api(settings, free_port()) as url:
        yield url


@pytest.fixture
def offline_page(browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    """A page that can reach only 127.0.0.1; the URLs it tried elsewhere are listed."""
    refused: list[str] = []

    def only_local(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    context = browser.new_context()
    context.route("**/*", only_local)
    try:
        yield context.new_page(), refused
    finally:
        context.close()


def test_swagger_ui_lists_the_operations_offline(base_url: str, offline_page) -> None:
    page, refused = offline_page
    page.goto(f"{base_url}/docs")
    page.wait_for_selector(".opblock", timeout=15_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/v1/users/{user_id}/recommendations" in {p.replace("\u200b", "") for p in paths}
    assert refused == []


def test_redoc_renders_offline(base_url: str, offline_page) -> None:
    page, refused = offline_page
    page.goto(f"{base_url}/redoc")
    page.get_by_text("Audotics read API").first.wait_for(timeout=15_000)
    assert page.locator("[data-section-id^='operation/']").count() > 0
    assert refused == []
