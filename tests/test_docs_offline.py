"""The dbt docs and the GX Data Docs work without the internet: `audotics docs` serves both
over HTTP, the GX site loads its JS/CSS from the vendored packages (`make setup`), and headless
Chromium shows their content (the run, the dbt project tree)."""

from __future__ import annotations

import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from audotics.errors import AudoticsError
from audotics.settings import Settings
from expectations import events as event_suites
from expectations.validation import (
    CDN_ASSETS,
    SITE_STYLESHEET,
    VENDOR_DIR,
    build_data_docs,
    gx_context_docs,
    validate,
)
from ingestion import rules
from orchestration.docs_server import start_servers
from tests.support import REPO, free_port
from warehouse.dbt import run_dbt

STARTUP_TIMEOUT_S = 20
RENDER_TIMEOUT_MS = 20_000
SUITE = "events.refine"


@dataclass(frozen=True)
class DocsServer:
    settings: Settings
    dbt_url: str
    gx_url: str


@pytest.fixture(scope="module")
def docs_platform(isolated_platform) -> Settings:
    """A platform with one stored validation, its Data Docs built, and dbt's docs generated
    (against an empty warehouse: `--empty-catalog` needs no built tables)."""
    if not (VENDOR_DIR / ".installed").exists():
        pytest.fail(
            f"the vendored Data Docs assets are missing from {VENDOR_DIR}: run `make setup`"
        )
    settings = isolated_platform("docs_offline")
    summary = event_suites.RefineSummary(
        bronze_rows=3, silver_rows=2, quarantine_rows=1, duplicate_rows=0,
        rows_by_reason={"malformed_json": 1}, silver_columns=event_suites.SILVER_COLUMNS,
        silver_nulls={}, silver_event_ids=2, silver_unknown_event_types=0,
    )  # fmt: skip
    suite = event_suites.refine(rules.REASON_FAMILIES)
    assert validate(settings, suite, [summary.row(rules.REASON_FAMILIES)], "docs-offline").success
    build_data_docs(settings)
    run_dbt(settings, ["docs", "generate", "--empty-catalog"])
    return settings


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def docs_server(docs_platform: Settings, env_for, tmp_path_factory) -> Iterator[DocsServer]:
    dbt_port, gx_port = free_port(), free_port()
    env = {
        **env_for(docs_platform),
        "AUDOTICS_DOCS_DBT_PORT": str(dbt_port),
        "AUDOTICS_DOCS_GX_PORT": str(gx_port),
    }
    log = tmp_path_factory.mktemp("docs_server") / "docs.log"
    server = DocsServer(
        docs_platform, f"http://127.0.0.1:{dbt_port}", f"http://127.0.0.1:{gx_port}"
    )
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "audotics"), "docs"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not (_answers(server.dbt_url) and _answers(server.gx_url)):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"audotics docs did not serve both sites:\n{log.read_text()}")
            time.sleep(0.2)
        assert server.dbt_url in log.read_text() and server.gx_url in log.read_text()
        yield server
    finally:
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends: both servers stop
        try:
            assert process.wait(timeout=10) == 0, log.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture(scope="module")
def page(browser: Browser) -> Iterator[Page]:
    page = browser.new_page()
    yield page
    page.close()


def test_gx_data_docs_load_no_asset_from_the_internet(docs_platform: Settings) -> None:
    site = gx_context_docs(docs_platform)
    pages = list(site.rglob("*.html"))
    assert len(pages) >= 2  # the index and the validation page
    for html_page in pages:
        html = html_page.read_text()
        # Assets only: links to greatexpectations.io stay links.
        remote = re.findall(r'<(?:script|link|img)[^>]*?(?:src|href)="(https?://[^"]+)"', html)
        assert not remote, (html_page, remote)
        assert "logo-long.png" in html  # the navbar's logo, now the site's own copy
    assert "https://" not in (site / SITE_STYLESHEET).read_text()  # the dark theme's logo
    for name in CDN_ASSETS.values():
        assert (site / "static" / "vendor" / name).is_file(), name


def test_gx_data_docs_index_lists_the_run_in_a_browser(docs_server: DocsServer, page) -> None:
    requested: list[str] = []
    failed: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto(f"{docs_server.gx_url}/index.html")
    # bootstrap-table fills the runs table from JavaScript: a row means jQuery and it loaded.
    row = page.locator("table tbody tr", has_text=SUITE).first
    row.wait_for(timeout=RENDER_TIMEOUT_MS)
    assert "docs-offline" in row.inner_text()
    assert [url for url in requested if not url.startswith(docs_server.gx_url)] == []
    assert failed == []


def test_gx_validation_page_loads_its_chart_libraries_locally(
    docs_server: DocsServer, page
) -> None:
    site = gx_context_docs(docs_server.settings)
    (validation,) = (site / "validations").rglob("*.html")
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{docs_server.gx_url}/{validation.relative_to(site).as_posix()}")
    page.get_by_text("Gate:", exact=False).first.wait_for(timeout=RENDER_TIMEOUT_MS)
    # The charts are drawn by vega-embed: loaded, and from the site.
    assert page.evaluate("typeof vegaEmbed") == "function"
    assert [url for url in requested if not url.startswith(docs_server.gx_url)] == []


def test_dbt_docs_render_the_project_tree(docs_server: DocsServer, page) -> None:
    page.goto(f"{docs_server.dbt_url}/index.html")
    # The tree is drawn once manifest.json is fetched (what file:// refuses); its folders start
    # collapsed, so the model is in the DOM, not visible.
    page.get_by_text("stg_events", exact=True).first.wait_for(
        state="attached", timeout=RENDER_TIMEOUT_MS
    )


def test_a_busy_port_fails_at_once_naming_port_and_setting(tmp_path: Path) -> None:
    busy = Settings(
        _env_file=None, home=tmp_path, docs_dbt_port=free_port(), docs_gx_port=free_port()
    )  # type: ignore[call-arg]
    holder = start_servers(busy)  # holds both ports
    try:
        with pytest.raises(AudoticsError, match=rf"{busy.docs_dbt_port}.*AUDOTICS_DOCS_DBT_PORT"):
            start_servers(busy.model_copy(update={"docs_gx_port": free_port()}))
    finally:
        for server in holder:
            server.shutdown()
            server.server_close()
