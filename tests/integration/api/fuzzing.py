"""Schemathesis over the API in process (WSGI), with every check: shared by the test and benchmarks/fuzz_api.py.

Operations are driven with Hypothesis directly (``operation.as_strategy()``):
schemathesis' own pytest plugin does not run under pytest 9 yet. Each operation
gets valid (positive) and invalid (negative) requests, and valid requests
addressed to real rows of the seeded database (``real-rows``: the path names a
real session, order or external order, and a session call names the session's
own channel); every response goes through all of schemathesis' checks
(``-c all``).

What a schema cannot say: a well-formed request may still address state that
is not there — a line id the session no longer has, a transition the order's
flow does not allow from its current status, an issue that was replaced. The
kernel answers those with a 400 and a *state* code (``STATE_CODES``); for those
codes alone a 400 to a schema-valid request is not counted as a
``positive_data_acceptance`` failure. Shape codes (``invalid``, ``parse_error``,
``invalid_qty``, ``invalid_price``, ``missing_field``…) always count: the schema
must refuse what the server refuses.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from functools import cache

import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.failures import FailureGroup

# 400s that depend on the state of a row, not on the request's shape (docs/api/rest-api.rst, "Errors").
STATE_CODES = frozenset(
    {
        "unknown_line_id",  # the session has no such line (any more)
        "invalid_merge",  # the two lines hold different skus
        "invalid_path",  # set_data/set_line_meta through a key that holds a scalar
        "missing_unit_price_q",  # the channel prices externally
        "invalid_transition",  # the order's flow does not allow it from its current status
        "validation_failed",  # a channel validator refused the session
        "data_too_large",  # the session's data would outgrow SESSION_DATA_MAX_BYTES
        "session_key_conflict",
        "not_a_table",  # close-table on a session whose handle is not one of the flow's tables
        "round_not_sent",  # close-table while the table's open round has items
        "bill_not_settled",  # close-table while the table's bill is not paid
        # bills (issue #15): what the bill, its lines and its payments hold now
        "overpayment",  # more than what is due (or nothing is due)
        "insufficient_tender",  # cash that does not cover the amount and the tip
        "unknown_method",  # a method the channel does not take
        "reference_required",  # a card payment without an authorization code
        "currency_mismatch",  # not the bill's currency
        "invalid_split",  # no such part, a line in two groups, nothing due
        "over_void",  # more than what is left of the line
        "over_refund",  # more than what is left of the payment
        "not_removable",  # a void or a write-off
        "payment_declined",  # the gateway refused
        "line_not_found",  # a line discount on a line the session does not have
        # A discount is a percent or an amount (exactly one, which a JSON schema here cannot say), and never more
        # than what is left of what it applies to (the session's amounts decide).
        "invalid_discount",
        "invalid_adjustment",  # the automatic service charge is waived, not removed
        # the floor (docs/api/floor.rst): the tables, lines and plan as they are now
        "same_table",
        "table_not_found",
        "nothing_to_move",
        "area_not_found",
        "overlap",
        "off_grid",
    }
)


def seed_rows() -> dict[str, str]:
    """The demo's database (``seed_demo``: catalog, four channels, open sessions, orders, a marketplace order)
    and the path parameters that address its real rows."""
    from django.core.management import call_command

    from omniman.models import Order, Session
    from omniman.services import BillService, PaymentService

    call_command("seed_demo", "--no-users", verbosity=0)
    session = Session.objects.filter(state=Session.State.OPEN, channel__code="tables").order_by("id").first()
    order = Order.objects.filter(channel__code="counter", status="confirmed").order_by("id").first()
    external = Order.objects.filter(channel__code="marketplace").exclude(external_ref="").order_by("id").first()
    # A bill of the order, paid in part, with a discount: real rows for the bill, payment and adjustment paths.
    bill = BillService.open("counter", order_ref=order.ref)
    payment = PaymentService.tender(bill.ref, method="cash", amount_q=100, idempotency_key="fuzz-seed").payment
    bill = BillService.discount(bill.ref, amount_q=10, reason="seed", roles={"manager"})
    return {
        "bill_ref": bill.ref,
        "payment_id": payment.pk,
        "shift_id": payment.shift_id,  # the shift the payment opened (a register's drawer)
        "adjustment_id": bill.adjustments[0]["id"],
        "line_id": order.items.order_by("id").first().line_id,
        "code": "marketplace",
        "key": session.session_key,
        "ref": order.ref,
        "external_id": external.external_ref,
        "channel_code": session.channel.code,
        "adjustment_id": (session.adjustments or [{"id": "0123456789ab"}])[0]["id"],
    }


def _on_real_rows(rows: dict[str, str]):
    """A real-rows case speaks of the session's own channel, so it reaches the session (not channel_not_found)."""

    def address(case):
        if isinstance(case.body, dict) and "channel_code" in case.body:
            case.body["channel_code"] = rows["channel_code"]
        if isinstance(case.query, dict) and "channel_code" in case.query:
            case.query["channel_code"] = rows["channel_code"]
        return case

    return address


def spec() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def operations() -> list[tuple[str, str]]:
    paths = spec()["paths"]
    return sorted((method.upper(), path) for path, methods in paths.items() for method in methods)


def runs() -> list[tuple[str, str, str]]:
    """(method, path, mode) for every operation: valid requests, invalid ones where there is input to
    spoil (query parameters or a body), valid ones on real rows where a path parameter can address them."""
    paths = spec()["paths"]
    found = []
    for method, path in operations():
        operation = paths[path][method.lower()]
        places = {parameter["in"] for parameter in operation.get("parameters", [])}
        found.append((method, path, "positive"))
        if "query" in places or "requestBody" in operation:
            found.append((method, path, "negative"))
        if "path" in places:
            found.append((method, path, "real-rows"))
    return found


@cache
def api_schema():
    schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    # The schema's description says no text may hold NUL; generated valid requests respect that.
    schema.config.generation.update(allow_x00=False)
    # A body over OMNIMAN["API_MAX_BODY_BYTES"] is refused with the documented 413 whatever its shape (the
    # schema bounds items and ops by count; their bytes it cannot bound): a refusal, not an acceptance.
    checks = schema.config.checks
    for config in (checks.positive_data_acceptance, checks.negative_data_rejection):
        config.expected_statuses = [*config.expected_statuses, "413"]
    return schema


@cache
def all_checks() -> tuple:
    load_all_checks()
    return tuple(CHECKS.get_all())


def check_names() -> list[str]:
    return [check.__name__ for check in all_checks()]


class keep_connection:
    """The WSGI app closes the database connection after each request; a test's transaction needs it open."""

    def __enter__(self):
        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)
        return self

    def __exit__(self, *exc):
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@dataclass
class Outcome:
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)


# (code, context.field) pairs that are state refusals too: the channel's status_map decides which statuses exist.
STATE_FIELDS = frozenset({("invalid_field", "status")})


def _state_refusal(response) -> bool:
    if response.status_code != 400:
        return False
    try:
        error = json.loads(response.content)["error"]
        code, field = error["code"], (error.get("context") or {}).get("field")
    except (ValueError, KeyError, TypeError, AttributeError):
        return False
    return code in STATE_CODES or (code, field) in STATE_FIELDS


def fuzz(method: str, path: str, mode: str, *, token: str, rows: dict[str, str], examples: int, seed: int | None = 0) -> Outcome:
    """Send ``examples`` generated requests to one operation; every check runs on every response."""
    operation = api_schema()[path][method]
    names = [parameter.name for parameter in operation.path_parameters]
    generation = GenerationMode.NEGATIVE if mode == "negative" else GenerationMode.POSITIVE
    fixed = {name: rows[name] for name in names} if mode == "real-rows" else None
    auth = {"Authorization": f"Token {token}"}
    checks = list(all_checks())
    others = [check for check in checks if check.__name__ != "positive_data_acceptance"]
    outcome = Outcome()

    def run(case):
        outcome.requests += 1
        response = case.call(headers=auth)
        outcome.statuses[response.status_code] += 1
        kept = others if _state_refusal(response) else checks
        try:
            case.validate_response(response, checks=kept, headers=auth)
        except (FailureGroup, AssertionError) as failure:
            outcome.failures.append(f"{method} {path} [{mode}]: {failure}")

    strategy = operation.as_strategy(generation_mode=generation, path_parameters=fixed)
    if mode == "real-rows" and "{key}" in path:
        strategy = strategy.map(_on_real_rows(rows))
    test = given(case=strategy)(
        settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)(run)
    )
    if seed is not None:
        test = hypothesis_seed(seed)(test)
    test()
    return outcome
