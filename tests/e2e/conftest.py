"""Browser tests: Debian's chromium, driven by Playwright, against pytest-django's live server.

Every test here is marked ``e2e`` and gets a fresh demo (``seed_demo``) in a
transactional database, with the checks dispatched in the request
(``DISPATCH_ON_COMMIT``) as in production. Tests never sleep: after an action
they wait for htmx to settle (no ``.htmx-request`` left) and then assert with
Playwright's auto-waiting ``expect``.

The browser is ``/usr/bin/chromium`` (never a browser that Playwright downloads itself); without it
the tests are skipped with a reason. Screenshots (1024×768) go to
``$OMNIMAN_SCREENSHOTS`` (default ``.test-results/screenshots/``).
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1024, "height": 768}
TIMEOUT_MS = 10_000
DISPATCH_ON_COMMIT = ["stock.hold", "pricing.check", "refs.assign_ticket"]
E2E_DIR = Path(__file__).resolve().parent
# Requests the serial live server is serving now (see ``wait_until_server_idle``).
IN_FLIGHT: list = []


def _skip_reason() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[test]')"
    return None


def pytest_collection_modifyitems(config, items):
    """Mark the tests of this directory ``e2e``; skip them all when there is no browser to drive."""
    reason = _skip_reason()
    for item in items:
        if E2E_DIR not in Path(item.path).resolve().parents:
            continue
        item.add_marker(pytest.mark.e2e)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


# -- the server side ------------------------------------------------------------------


@pytest.fixture(scope="session")
def live_server(request):
    """pytest-django's live server; on an in-memory SQLite database, one request at a time.

    Django hands the live server the test's own SQLite connection when the
    database is in memory, and a threaded server would run two requests'
    transactions on that one connection at once (a browser sends a change and
    its follow-up check together). Served one at a time, each request has the
    connection to itself, as it has its own in production. On PostgreSQL (and
    file SQLite) the server stays threaded: concurrent requests meet the real
    row locks there.
    """
    from unittest import mock

    from django.core.servers.basehttp import WSGIServer
    from django.db import connections
    from django.test.testcases import LiveServerThread
    from pytest_django.live_server_helper import LiveServer

    class SerialWSGIServer(WSGIServer):
        def __init__(self, *args, connections_override=None, **kwargs):
            super().__init__(*args, **kwargs)

        def process_request(self, request, client_address):
            IN_FLIGHT.append(client_address)
            try:
                super().process_request(request, client_address)
            finally:
                IN_FLIGHT.pop()

    addr = request.config.getvalue("liveserver") or os.getenv("DJANGO_LIVE_TEST_SERVER_ADDRESS") or "localhost"
    shared = any(c.vendor == "sqlite" and c.is_in_memory_db() for c in connections.all())
    with mock.patch.object(LiveServerThread, "server_class", SerialWSGIServer) if shared else nullcontext():
        server = LiveServer(addr)  # starts the thread, which builds its server before this returns
    yield server
    server.stop()




@pytest.fixture
def demo(transactional_db, live_server):
    """The demo café on the live server, with checks dispatched in the request; yields the server."""
    with override_settings(
        OMNIMAN={**settings.OMNIMAN, "DISPATCH_ON_COMMIT": DISPATCH_ON_COMMIT},
        # A fast hasher: the demo users are created for every test and sign in through the form.
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
    ):
        with override_settings(DEBUG=True):  # the demo users get their demo passwords
            call_command("seed_demo", stdout=io.StringIO())
        yield live_server


# -- the browser side -----------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    """One headless chromium for the run.

    While Playwright's sync API is started, an asyncio loop counts as running
    in this thread, and Django would refuse the tests' own ORM calls as
    "async-unsafe"; the tests are synchronous code that only waits on the
    browser, so the check is lifted for exactly as long as Playwright runs.
    """
    from playwright.sync_api import sync_playwright

    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            yield chromium
            chromium.close()
    finally:
        if saved is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


def settle(page) -> None:
    """Wait until htmx has no request in flight on the page (never a fixed sleep)."""
    page.wait_for_function("() => !document.querySelector('.htmx-request')")


def login(page, base_url: str, username: str, password: str | None = None) -> None:
    """Sign in through the real login form and land on the POS."""
    page.goto(f"{base_url}/accounts/login/?next=/pos/")
    page.fill("#id_username", username)
    page.fill("#id_password", password if password is not None else username)
    with page.expect_navigation():
        page.click("button[type=submit]")
    if "/accounts/login/" in page.url:
        raise AssertionError(f"could not sign in as {username!r}")


@pytest.fixture
def new_page(browser, demo) -> Iterator[Callable[..., object]]:
    """Factory: a page in its own browser context (own cookies), signed in as ``username``.

    JavaScript errors on any page fail the test at teardown.
    """
    contexts, errors = [], []

    def make(username: str = "pos", password: str | None = None):
        context = browser.new_context(viewport=VIEWPORT, base_url=demo.url)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"{username}: {exc}"))
        login(page, demo.url, username, password)
        return page

    yield make
    for context in contexts:
        context.close()
    wait_until_server_idle()
    assert not errors, f"JavaScript errors: {errors}"


def wait_until_server_idle(timeout: float = 15) -> None:
    """Wait until no request of a closed page is still running in the live server.

    Closing a browser context does not wait for the server: a request already
    sent (a follow-up check, a board poll) may still hold row locks when the
    test database is flushed, and PostgreSQL then breaks the TRUNCATE as a
    deadlock. On PostgreSQL the other backends on the test database are asked
    directly; on in-memory SQLite the serial server counts the request it is serving.
    """
    from django.db import connection

    deadline = time.monotonic() + timeout
    if connection.vendor != "postgresql":
        # The serial server (in-memory SQLite) shares this connection: wait for the request it is serving.
        while IN_FLIGHT and time.monotonic() < deadline:
            time.sleep(0.02)
        return
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')"
            )
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.05)


@pytest.fixture
def page(new_page):
    """A 1024×768 page signed in as ``pos``."""
    return new_page("pos")


@pytest.fixture(scope="session")
def screenshots_dir() -> Path:
    path = Path(os.environ.get("OMNIMAN_SCREENSHOTS") or ".test-results/screenshots/")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def shot(screenshots_dir) -> Callable[..., Path]:
    """``shot(page, "name")`` saves ``<dir>/<name>.png`` (the viewport, as the operator sees it)."""

    def take(page, name: str) -> Path:
        path = screenshots_dir / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return take
