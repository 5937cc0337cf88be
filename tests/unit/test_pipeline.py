"""The modify pipeline's contract guards (``omniman.services.pipeline``) on an in-memory session, no database:
line totals, a validator may not mutate, a modifier may not reprice an external session."""

from __future__ import annotations

import pytest

from omniman import registry
from omniman.exceptions import OmnimanError, ValidationError
from omniman.models import Channel, Session
from omniman.monetary import MAX_AMOUNT_Q
from omniman.services import pipeline


def session(*lines, pricing="internal") -> Session:
    channel = Channel(code="unit", name="Unit", pricing_policy=pricing)
    made = Session(session_key="SESS-UNIT", channel=channel, pricing_policy=pricing, data={})
    made.lines = [
        {"line_id": f"L-{i}", "sku": f"S{i}", "name": "x", "qty": qty, "unit_price_q": price, "line_total_q": 0, "meta": {}}
        for i, (qty, price) in enumerate(lines)
    ]
    return made


class Modifier:
    code, order = "unit-mod", 10

    def __init__(self, apply):
        self._apply = apply

    def apply(self, *, channel, session, ctx):
        self._apply(session)


class Validator:
    code, stage = "unit-val", "draft"

    def __init__(self, validate):
        self._validate = validate

    def validate(self, *, channel, session, ctx):
        self._validate(session)


@pytest.fixture
def clean_registry():
    registry.clear()


def test_line_totals_round_half_up():
    target = session(("1.5", 333), ("3", 100))
    pipeline.recompute_line_totals(target)
    assert [line["line_total_q"] for line in target.lines] == [500, 300]  # 499.5 → 500


def test_a_line_left_invalid_is_a_pipeline_violation():
    target = session(("0", 100))
    with pytest.raises(OmnimanError) as caught:
        pipeline.recompute_line_totals(target)
    assert caught.value.code == "pipeline_violation" and caught.value.context == {"line_id": "L-0"}


def test_a_total_beyond_64_bits_is_refused():
    target = session(("1000000", 10**10), *[("1000000", 10**10)] * 1000)
    assert 1001 * 10**16 > MAX_AMOUNT_Q
    with pytest.raises(ValidationError) as caught:
        pipeline.recompute_line_totals(target)
    assert caught.value.code == "invalid_price"


def test_a_validator_that_mutates_is_caught(clean_registry):
    registry.register_validator(Validator(lambda s: s.data.__setitem__("sneaky", True)))
    with pytest.raises(OmnimanError) as caught:
        pipeline.run_validators(session(("1", 10)), "draft", {})
    assert caught.value.code == "pipeline_violation" and caught.value.context == {"validator": "unit-val"}


def test_a_validator_that_reads_is_fine_and_its_error_propagates(clean_registry):
    def refuse(target):
        if len(target.lines) > 1:
            raise ValidationError("too_many", "One line only.")

    registry.register_validator(Validator(refuse))
    pipeline.run_validators(session(("1", 10)), "draft", {})
    with pytest.raises(ValidationError) as caught:
        pipeline.run_validators(session(("1", 10), ("1", 20)), "draft", {})
    assert caught.value.code == "too_many"
    pipeline.run_validators(session(("1", 10), ("1", 20)), "commit", {})  # another stage: not run


def test_a_modifier_may_not_reprice_an_external_session(clean_registry):
    def reprice(target):
        target.lines[0]["unit_price_q"] = 1

    registry.register_modifier(Modifier(reprice))
    pipeline.run_modifiers(session(("1", 10)), {})  # internal: a modifier prices
    with pytest.raises(OmnimanError) as caught:
        pipeline.run_modifiers(session(("1", 10), pricing="external"), {})
    assert caught.value.code == "pipeline_violation" and caught.value.context["line_ids"] == ["L-0"]


def test_a_modifier_may_add_its_own_line_to_an_external_session(clean_registry):
    def add_fee(target):
        target.lines.append({"line_id": "FEE", "sku": "FEE", "name": "Fee", "qty": "1", "unit_price_q": 99, "line_total_q": 0, "meta": {}})

    registry.register_modifier(Modifier(add_fee))
    target = session(("1", 10), pricing="external")
    pipeline.run_modifiers(target, {})
    assert [line["line_id"] for line in target.lines] == ["L-0", "FEE"]


def test_the_fingerprint_covers_what_a_validator_could_touch():
    base = session(("1", 10))
    before = pipeline.fingerprint(base)
    for change in (
        lambda s: s.lines[0].__setitem__("qty", "2"),
        lambda s: s.data.__setitem__("k", 1),
        lambda s: setattr(s, "rev", 5),
        lambda s: setattr(s, "handle_ref", "7"),
        lambda s: setattr(s, "pricing_policy", "external"),
    ):
        target = session(("1", 10))
        change(target)
        assert pipeline.fingerprint(target) != before
