"""The POS screens' query counts do not grow with the session's lines or the catalog's size.

Counted as Django counts them (the auth session and user lookups, BEGIN,
savepoints and COMMIT included) around one request of the test client: the
session screen (full page and cart partial), an htmx add, a table's screen with
a round sent today, and the channel's list. Each is measured with 1 and 100
lines (or sessions) and with 40 and 5,000 catalog products.
"""

from __future__ import annotations

import itertools

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from omniman.contrib.catalog.models import Category, Product
from omniman.contrib.demo.management.commands.seed_demo import CHANNELS
from omniman.contrib.stock.models import StockLevel
from omniman.models import Channel, Directive, Session
from omniman.services import CommitService, ModifyService, SessionService

pytestmark = [pytest.mark.django_db, pytest.mark.contrib("omniman.contrib.catalog", "omniman.contrib.pricing")]

HX = {"HTTP_HX_REQUEST": "true"}
CATEGORIES = 8
LINES = (1, 100)
CATALOG = (40, 5000)

# Ceilings: the counts measured when these tests were written, on SQLite and PostgreSQL alike
# unless said otherwise. A basket's screen is 8 queries (auth session, user, roles, channel,
# session, categories, grid, queued checks); a table's adds its rounds and their items (10).
PAGE_CEILING = 11  # + the kitchen's 86 list (one query)
CART_CEILING = 8  # 6 for a basket, 8 for a tab
ADD_CEILING = 17  # on both databases (PostgreSQL's NOTIFY comes from a trigger)
TAB_ADD_CEILING = 20  # an add on a tab re-renders its rounds too
LIST_CEILING = 5
ADD_WITH_CHECKS_CEILING = 34  # the add (17), its stock and pricing checks run after its commit, the session read again


def _categories() -> list[Category]:
    return [Category.objects.create(code=f"cat-{i}", name=f"Category {i}", sort_order=i) for i in range(CATEGORIES)]


def grow_catalog(size: int) -> None:
    """Products P00000… spread over the categories, up to ``size`` in all (bulk inserts)."""
    categories = list(Category.objects.order_by("sort_order")) or _categories()
    start = Product.objects.count()
    Product.objects.bulk_create(
        [
            Product(
                sku=f"P{i:05d}",
                name=f"Product {i}",
                category=categories[i % len(categories)],
                price_q=100 + i,
                station=("bar", "kitchen", "pastry")[i % 3],
                barcode=f"789{i:010d}",
                sort_order=i,
            )
            for i in range(start, size)
        ],
        batch_size=500,
    )
    assert Product.objects.count() == size


def channels() -> None:
    for spec in CHANNELS:
        if spec["code"] in ("counter", "tables"):
            Channel.objects.create(**spec)


def pos_client() -> Client:
    user = get_user_model().objects.create_user(username="pos")
    user.groups.add(Group.objects.get_or_create(name="pos")[0])
    client = Client()
    client.force_login(user)
    return client


def session_with(lines: int, *, channel: str = "counter", table: str = "") -> Session:
    """An open session with ``lines`` lines over the first 40 products (priced by the catalog)."""
    session = SessionService.open_session(channel, handle_type="table" if table else "", handle_ref=table)
    skus = itertools.cycle([f"P{i:05d}" for i in range(40)])
    ops = [{"op": "add_line", "sku": next(skus), "qty": 1} for _ in range(lines)]
    return ModifyService.modify_session(session.session_key, channel, ops)


def tab_with_round(lines: int, table: str) -> Session:
    """A table whose first round (``lines`` items) was sent today; the next round holds ``lines`` lines."""
    first = session_with(lines, channel="tables", table=table)
    from omniman.services import SessionWriteService

    SessionWriteService.write_check(first.session_key, "tables", check_code="stock", expected_rev=first.rev, result={})
    CommitService.commit(first.session_key, "tables", idempotency_key=f"round-{table}")
    return session_with(lines, channel="tables", table=table)


def screen_url(session: Session) -> str:
    return reverse("pos:session", args=[session.channel.code, session.session_key])


def count(client: Client, method: str, path: str, data=None, **headers) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = getattr(client, method)(path, data, **headers)
    assert response.status_code == 200, response.content.decode()[:2000]
    return len(ctx.captured_queries)


def page(client, session) -> int:
    return count(client, "get", screen_url(session))


def cart(client, session) -> int:
    return count(client, "get", screen_url(session), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="cart")


def add(client, session) -> int:
    session = Session.objects.get(pk=session.pk)
    path = reverse("pos:add", args=[session.channel.code, session.session_key])
    queries = count(client, "post", path, {"rev": session.rev, "sku": "P00003"}, **HX)
    assert Session.objects.get(pk=session.pk).rev == session.rev + 1
    return queries


def measure(what, client, make) -> dict[tuple[int, int], int]:
    """``what(client, session)`` for every (catalog size, lines), the catalog growing from 40 to 5,000."""
    results = {}
    for size in CATALOG:
        grow_catalog(size)
        for lines in LINES:
            session = make(lines, size)
            what(client, session)  # warm-up: the first request of a shape may fill caches
            results[(size, lines)] = what(client, session)
    print(f"\n{what.__name__} ({connection.vendor}): {results}")
    return results


def assert_flat(results: dict, ceiling: int) -> None:
    assert len(set(results.values())) == 1, f"the query count varies: {results}"
    assert next(iter(results.values())) <= ceiling, results


@pytest.fixture
def pos():
    channels()
    return pos_client()


def test_session_page_queries_do_not_grow(pos):
    results = measure(page, pos, lambda lines, size: session_with(lines))
    assert_flat(results, PAGE_CEILING)


def test_cart_partial_queries_do_not_grow(pos):
    results = measure(cart, pos, lambda lines, size: session_with(lines))
    assert_flat(results, CART_CEILING)


def test_htmx_add_queries_do_not_grow(pos):
    results = measure(add, pos, lambda lines, size: session_with(lines))
    assert_flat(results, ADD_CEILING)


def test_htmx_add_on_a_tab_queries_do_not_grow(pos):
    results = measure(add, pos, lambda lines, size: tab_with_round(lines, f"{size}-{lines}"))
    assert_flat(results, TAB_ADD_CEILING)


def test_table_screen_with_rounds_queries_do_not_grow(pos):
    results = measure(page, pos, lambda lines, size: tab_with_round(lines, f"{size}-{lines}"))
    assert_flat(results, PAGE_CEILING)


def test_table_cart_partial_with_rounds_queries_do_not_grow(pos):
    results = measure(cart, pos, lambda lines, size: tab_with_round(lines, f"{size}-{lines}"))
    assert_flat(results, CART_CEILING)


def test_channel_list_queries_do_not_grow_with_open_sessions(pos):
    path = reverse("pos:channel", args=["counter"])
    grow_catalog(40)
    session_with(3)
    count(pos, "get", path)
    one = count(pos, "get", path)
    for _ in range(99):
        session_with(3)
    hundred = count(pos, "get", path)
    searched = count(pos, "get", path, {"q": "x"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="sessions")
    print(f"\nchannel list ({connection.vendor}): 1 session {one}, 100 sessions {hundred}, htmx search {searched}")
    assert one == hundred <= LIST_CEILING
    assert searched <= one


@pytest.mark.django_db(transaction=True)
def test_htmx_add_runs_its_checks_in_the_same_request_without_growing():
    """With dispatch on, an htmx add runs its checks right after it commits and answers with their result.

    One round trip per tap: no check is left queued, the answer shows the stock
    check and asks for no follow-up; the add with its checks, and the "Check
    now" that re-runs them, cost the same queries for 1 and 100 lines.
    """
    channels()
    client = pos_client()
    grow_catalog(200)
    StockLevel.objects.bulk_create(StockLevel(sku=f"P{i:05d}", on_hand=1000) for i in range(200))
    results = {}
    with override_settings(OMNIMAN={"DISPATCH_ON_COMMIT": ["stock.hold", "pricing.check", "refs.assign_ticket"]}):
        for lines in LINES:
            session = SessionService.open_session("counter")
            ops = [{"op": "add_line", "sku": f"P{i:05d}", "qty": 1} for i in range(40, 40 + lines)]
            session = ModifyService.modify_session(session.session_key, "counter", ops)
            add(client, session)
            before = Session.objects.get(pk=session.pk)
            path = reverse("pos:add", args=["counter", session.session_key])
            with CaptureQueriesContext(connection) as ctx:
                response = client.post(path, {"rev": before.rev, "sku": "P00003"}, **HX)
            assert response.status_code == 200
            results[("add", lines)] = len(ctx.captured_queries)
            session = Session.objects.get(pk=session.pk)
            assert session.rev == before.rev + 1
            assert session.data["checks"]["stock"]["rev"] == session.rev  # ran in the add's request
            assert session.data["checks"]["stock"]["status"] == "ok"
            assert not Directive.objects.filter(topic="stock.hold", status="queued").exists()
            text = response.content.decode()
            assert "checks-follow" not in text and "check-ok" in text  # the answer shows it, asks for nothing
            check = reverse("pos:check", args=["counter", session.session_key])
            results[("check", lines)] = count(client, "post", check, {"rev": session.rev}, **HX)
            # Without JavaScript the add runs its checks in the request too, then redirects.
            response = client.post(path, {"rev": session.rev, "sku": "P00003"})
            assert response.status_code == 302
            after = Session.objects.get(pk=session.pk)
            assert after.data["checks"]["stock"]["rev"] == after.rev == session.rev + 1
    print(f"\nhtmx add with its checks, and check now, with dispatch on ({connection.vendor}): {results}")
    assert results[("add", 1)] == results[("add", 100)] <= ADD_WITH_CHECKS_CEILING
    assert results[("check", 1)] == results[("check", 100)]
