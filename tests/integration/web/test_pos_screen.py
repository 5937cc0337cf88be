"""The session screen's reads (``pos.session_view``, ``pos.search``): the page, the cart and grid partials, search results.
"""

from __future__ import annotations

import re

import pytest

from tests.integration.web.helpers import (
    CAFE,
    HX,
    XSS,
    XSS_ESCAPED,
    basket,
    url,
    text,
    template_names,
    assert_cart,
    assert_page,
    shown_rev,
    FormReader,
)

pytestmark = [pytest.mark.django_db, CAFE]


def test_session_page_renders_cart_grid_rev_and_commit_key(pos):
    session = basket("counter", "ESP", ("CAP", 2))
    response = pos.get(url("session", session))
    body = assert_page(response)
    assert "HX-Request" in response["Vary"]
    assert shown_rev(body) == session.rev
    assert f'name="rev" value="{session.rev}"' in body
    assert re.search(r'name="idempotency_key" value="[0-9a-f]{32}"', body)
    assert "Espresso" in body and "Cappuccino" in body
    assert "R$25.00" in body  # 6.00 + 2 × 9.50
    assert "Stock: pending…" in body and "Check now" in body
    # The grid shows the first category (Coffee) and the category links.
    assert 'class="cat active"' in body and ">Coffee</a>" in body and "Mocha" in body
    assert "Burger" not in body
    # The commit button waits for the checks.
    parser = FormReader()
    parser.feed(body)
    commit_button = next(b for b in parser.buttons if "Place order" in b["label"])
    assert commit_button["disabled"]
    # Only managers see the price form.
    assert 'name="price"' not in body
    # Each load mints a new idempotency key.
    other = text(pos.get(url("session", session)))
    key = re.compile(r'name="idempotency_key" value="([0-9a-f]{32})"')
    assert key.search(body).group(1) != key.search(other).group(1)


def test_cart_and_grid_partials(pos):
    session = basket("counter", "ESP")
    cart = pos.get(url("session", session), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="cart")
    body = assert_cart(cart)
    assert "Espresso" in body and shown_rev(body) == session.rev
    grid = pos.get(url("session", session), {"category": "mains"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="grid")
    body = text(grid)
    assert grid.status_code == 200 and 'id="grid"' in body and "<html" not in body and 'id="cart"' not in body
    assert "pos/session.html#grid" in template_names(grid)
    assert "Burger" in body and "Espresso" not in body
    assert 'class="cat active"' in body and ">Mains</a>" in body
    # Without htmx the same query gives the whole page on that category (works without JavaScript).
    page = assert_page(pos.get(url("session", session), {"category": "mains"}))
    assert "Burger" in page


@pytest.mark.parametrize(
    "query,expected",
    [("esp", "Espresso"), ("7890000000042", "Cappuccino"), ("cappuc", "Cappuccino"), ("croiss", "Croissant")],
)


def test_search_results_partial(pos, query, expected):
    session = basket("counter")
    response = pos.get(url("search", session), {"q": query}, **HX)
    body = text(response)
    assert response.status_code == 200 and 'id="results"' in body and "<html" not in body
    assert "pos/session.html#results" in template_names(response)
    first = re.search(r'class="result first"[^>]*>\s*<span class="name">([^<]+)</span>', body).group(1)
    assert first == expected
    # Without JavaScript a result submits the add form; with it, app.js sends it from the add form,
    # with the query the results answer (not the search box: a scanner may be typing the next code).
    assert 'form="add-form" name="sku"' in body
    assert f'data-send="{url("add", session)}" data-query="{query}"' in body


def test_search_without_match_says_so_and_escapes_the_query(pos):
    session = basket("counter")
    body = text(pos.get(url("search", session), {"q": "zzz" + XSS}, **HX))
    assert "No product matches" in body
    assert XSS not in body and XSS_ESCAPED in body
