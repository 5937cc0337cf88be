"""The pure adjustments math (omniman.adjustments): order of application, rounding, caps, validation."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omniman.adjustments import (
    apply_adjustments,
    discount_base_q,
    effective_discount_percent,
    make_adjustment,
    prune_adjustments,
    validate_discount,
)
from omniman.exceptions import ValidationError


def line(line_id, total):
    return {"line_id": line_id, "sku": line_id.upper(), "qty": "1", "unit_price_q": total, "line_total_q": total}


LINES = [line("a", 1000), line("b", 2600)]  # 36.00


def test_no_adjustments_is_the_items():
    applied, totals = apply_adjustments(LINES, [])
    assert applied == []
    assert totals["items_q"] == totals["total_q"] == 3600
    assert totals["adjustments_q"] == totals["discount_q"] == totals["service_q"] == 0
    assert totals["service_percent"] == "0"


def test_service_charge_ten_percent_of_36_is_3_60():
    service = make_adjustment("service_charge", percent="10", auto=True)
    applied, totals = apply_adjustments(LINES, [service], currency="BRL")
    assert applied[0]["amount_q"] == 360
    assert totals == {
        "items_q": 3600, "discount_q": 0, "service_percent": "10", "service_q": 360, "surcharge_q": 0,
        "void_q": 0, "write_off_q": 0, "adjustments_q": 360, "total_q": 3960, "currency": "BRL",
    }


def test_order_line_discount_then_whole_then_service():
    adjustments = [
        make_adjustment("service_charge", percent="10"),
        make_adjustment("discount", percent="10"),  # whole: 10 % of (3600 - 500) = 310
        make_adjustment("discount", line_id="a", percent="50"),  # 500 off line a
    ]
    applied, totals = apply_adjustments(LINES, adjustments)
    assert [a["amount_q"] for a in applied] == [279, -310, -500]  # service: 10 % of 2790
    assert totals["discount_q"] == 810
    assert totals["total_q"] == 3600 - 810 + 279


def test_rounding_is_half_up():
    # 12.5 % of 1004 = 125.5 → 126 ; 10 % of 5 = 0.5 → 1 ; 10 % of 4 = 0.4 → 0
    assert apply_adjustments([line("a", 1004)], [make_adjustment("discount", percent="12.5")])[0][0]["amount_q"] == -126
    assert apply_adjustments([line("a", 5)], [make_adjustment("service_charge", percent="10")])[0][0]["amount_q"] == 1
    assert apply_adjustments([line("a", 4)], [make_adjustment("service_charge", percent="10")])[0][0]["amount_q"] == 0


def test_amounts_are_capped_at_what_they_apply_to():
    adjustments = [
        make_adjustment("discount", line_id="a", amount_q=1500),  # line a is 1000
        make_adjustment("discount", amount_q=99999),  # the rest is 2600
        make_adjustment("service_charge", percent="10"),
    ]
    applied, totals = apply_adjustments(LINES, adjustments)
    assert [a["amount_q"] for a in applied] == [-1000, -2600, 0]
    assert totals["total_q"] == 0
    # the amount asked is kept: when the line grows back the discount takes what it asked
    bigger = [line("a", 3000), line("b", 2600)]
    again, _ = apply_adjustments(bigger, applied)
    assert again[0]["amount_q"] == -1500


def test_two_line_discounts_share_the_line():
    adjustments = [make_adjustment("discount", line_id="a", percent="60"), make_adjustment("discount", line_id="a", percent="60")]
    applied, _ = apply_adjustments(LINES, adjustments)
    assert [a["amount_q"] for a in applied] == [-600, -400]


def test_waived_service_charge_is_zero():
    applied, totals = apply_adjustments(LINES, [make_adjustment("service_charge", percent="0", reason="regular")])
    assert applied[0]["amount_q"] == 0
    assert totals["total_q"] == 3600


def test_void_surcharge_and_write_off():
    adjustments = [
        make_adjustment("write_off", reason="bad debt"),  # everything left
        make_adjustment("void", line_id="b", reason="dropped"),  # no amount: the whole line
        make_adjustment("surcharge", amount_q=100),
    ]
    applied, totals = apply_adjustments(LINES, [adjustments[1], adjustments[2]])
    assert [a["amount_q"] for a in applied] == [0, 100]  # a void needs an amount or a percent
    adjustments[1] = make_adjustment("void", line_id="b", percent="100", reason="dropped")
    applied, totals = apply_adjustments(LINES, adjustments)
    assert [a["amount_q"] for a in applied] == [-1100, -2600, 100]
    assert totals["void_q"] == 2600 and totals["write_off_q"] == 1100 and totals["surcharge_q"] == 100
    assert totals["total_q"] == 0


def test_a_partial_write_off():
    applied, totals = apply_adjustments(LINES, [make_adjustment("write_off", amount_q=600, reason="x")])
    assert applied[0]["amount_q"] == -600
    assert totals["total_q"] == 3000


def test_a_discount_on_a_line_that_is_gone_takes_nothing_and_is_pruned():
    adjustments = [make_adjustment("discount", line_id="zz", amount_q=100, reason="x"), make_adjustment("discount", amount_q=100, reason="y")]
    applied, totals = apply_adjustments(LINES, adjustments)
    assert applied[0]["amount_q"] == 0 and totals["total_q"] == 3500
    assert [a["reason"] for a in prune_adjustments(LINES, adjustments)] == ["y"]


def test_input_is_not_mutated():
    adjustments = [make_adjustment("discount", percent="10", reason="x")]
    before = dict(adjustments[0])
    apply_adjustments(LINES, adjustments)
    assert adjustments[0] == before


def test_bad_stored_adjustments_are_refused():
    with pytest.raises(ValidationError) as info:
        apply_adjustments(LINES, [{"kind": "gift", "amount_q": -1}])
    assert info.value.code == "invalid_adjustment"
    with pytest.raises(ValidationError) as info:
        apply_adjustments(LINES, [{"kind": "discount", "percent": "120", "amount_q": 0}])
    assert info.value.code == "invalid_adjustment"
    with pytest.raises(ValidationError):
        make_adjustment("discount", percent="abc")


def test_make_adjustment_shape():
    adjustment = make_adjustment("discount", line_id="a", amount_q=250, reason="r", actor="ana", approved_by="max", label="L")
    assert set(adjustment) == {"id", "kind", "label", "line_id", "percent", "amount_q", "requested_q", "reason", "actor", "approved_by", "at", "auto"}
    assert len(adjustment["id"]) == 12 and int(adjustment["id"], 16) >= 0
    assert adjustment["amount_q"] == -250 and adjustment["requested_q"] == 250 and adjustment["percent"] is None
    assert make_adjustment("discount", percent="12.50")["percent"] == "12.5"
    assert make_adjustment("service_charge", percent=10)["amount_q"] == 0


@pytest.mark.parametrize(
    "kwargs,code",
    [
        ({"percent": "0", "reason": "r"}, "invalid_discount"),
        ({"percent": "100.01", "reason": "r"}, "invalid_discount"),
        ({"percent": "-5", "reason": "r"}, "invalid_discount"),
        ({"percent": "10.001", "reason": "r"}, "invalid_discount"),
        ({"percent": "NaN", "reason": "r"}, "invalid_discount"),
        ({"amount_q": 0, "reason": "r"}, "invalid_discount"),
        ({"amount_q": -10, "reason": "r"}, "invalid_discount"),
        ({"amount_q": "10", "reason": "r"}, "invalid_discount"),
        ({"amount_q": 3601, "reason": "r"}, "invalid_discount"),
        ({"line_id": "a", "amount_q": 1001, "reason": "r"}, "invalid_discount"),
        ({"percent": "10", "amount_q": 10, "reason": "r"}, "invalid_discount"),
        ({"reason": "r"}, "invalid_discount"),
        ({"percent": "10", "reason": "  "}, "reason_required"),
        ({"line_id": "nope", "percent": "10", "reason": "r"}, "line_not_found"),
    ],
)
def test_validate_discount_refuses(kwargs, code):
    with pytest.raises(ValidationError) as info:
        validate_discount(LINES, [], **kwargs)
    assert info.value.code == code


def test_validate_discount_accepts_and_counts_what_is_already_off():
    assert validate_discount(LINES, [], percent="100", reason="r") == (Decimal("100"), None)
    assert validate_discount(LINES, [], line_id="a", amount_q=1000, reason="r") == (None, 1000)
    existing = [make_adjustment("discount", line_id="a", amount_q=600, reason="r")]
    assert discount_base_q(LINES, existing, "a") == 400
    assert discount_base_q(LINES, existing) == 3000
    with pytest.raises(ValidationError):
        validate_discount(LINES, existing, line_id="a", amount_q=401, reason="r")


def test_effective_percent_is_cumulative_on_the_target():
    new = make_adjustment("discount", amount_q=360, reason="r")
    assert effective_discount_percent(LINES, [], new) == Decimal("10.00")
    existing = [make_adjustment("discount", percent="5", reason="r")]
    assert effective_discount_percent(LINES, existing, new) == Decimal("15.00")
    on_line = make_adjustment("discount", line_id="a", percent="20", reason="r")
    assert effective_discount_percent(LINES, existing, on_line) == Decimal("20.00")
    assert effective_discount_percent([line("a", 0)], [], make_adjustment("discount", percent="50")) == 0


adjustment_strategy = st.one_of(
    st.builds(
        lambda kind, line_id, percent: make_adjustment(kind, line_id=line_id, percent=percent),
        st.sampled_from(["discount", "void"]),
        st.sampled_from(["", "l0", "l1", "l2", "gone"]),
        st.decimals(min_value=0, max_value=100, places=2).map(str),
    ),
    st.builds(
        lambda kind, line_id, amount: make_adjustment(kind, line_id=line_id, amount_q=amount),
        st.sampled_from(["discount", "void", "write_off"]),
        st.sampled_from(["", "l0", "l1", "l2"]),
        st.integers(min_value=0, max_value=10**7),
    ),
    st.builds(
        lambda kind, percent: make_adjustment(kind, percent=percent),
        st.sampled_from(["service_charge", "surcharge", "write_off"]),
        st.decimals(min_value=0, max_value=100, places=2).map(str),
    ),
    st.builds(lambda amount: make_adjustment("surcharge", amount_q=amount), st.integers(min_value=0, max_value=10**6)),
)


@settings(max_examples=300, deadline=None)
@given(
    totals=st.lists(st.integers(min_value=0, max_value=10**8), min_size=0, max_size=3),
    adjustments=st.lists(adjustment_strategy, max_size=8),
)
def test_property_total_is_items_plus_adjustments_and_never_negative(totals, adjustments):
    lines = [line(f"l{i}", total) for i, total in enumerate(totals)]
    applied, result = apply_adjustments(lines, adjustments)
    assert result["items_q"] == sum(totals)
    assert result["adjustments_q"] == sum(a["amount_q"] for a in applied)
    assert result["total_q"] == result["items_q"] + result["adjustments_q"]
    assert result["total_q"] >= 0
    assert result["discount_q"] >= 0 and result["void_q"] >= 0 and result["write_off_q"] >= 0
    for adjustment in applied:
        assert isinstance(adjustment["amount_q"], int)
        if adjustment["kind"] in ("discount", "void", "write_off"):
            assert adjustment["amount_q"] <= 0
        else:
            assert adjustment["amount_q"] >= 0
    # a line never loses more than it is worth
    for i, total in enumerate(totals):
        taken = -sum(a["amount_q"] for a in applied if a["line_id"] == f"l{i}" and a["kind"] in ("discount", "void"))
        assert taken <= total
    # applying again (the amounts filled) gives the same totals: the computation is stable
    assert apply_adjustments(lines, applied)[1] == result
