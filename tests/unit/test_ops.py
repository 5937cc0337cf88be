"""The session ops (``omniman.services.ops``) on an in-memory session: parsing, bounds and codes, no database."""

from __future__ import annotations

from decimal import Decimal

import pytest

from omniman.exceptions import SessionError, ValidationError
from omniman.models import Channel, Session
from omniman.services.ops import OPS, apply_ops


def session(*lines, pricing="internal", edit="open", data=None) -> Session:
    """An unsaved session holding ``lines`` (sku, qty, price)."""
    channel = Channel(code="unit", name="Unit", pricing_policy=pricing, edit_policy=edit)
    made = Session(session_key="SESS-UNIT", channel=channel, pricing_policy=pricing, edit_policy=edit, data=data or {})
    made.lines = [
        {"line_id": f"L-{i}", "sku": sku, "name": sku, "qty": qty, "unit_price_q": price, "line_total_q": 0, "meta": {}}
        for i, (sku, qty, price) in enumerate(lines)
    ]
    return made


def apply(target: Session, *ops: dict) -> Session:
    apply_ops(target, list(ops), ctx={"actor": "unit"})
    return target


def code_of(target: Session, *ops: dict, error=ValidationError) -> str:
    with pytest.raises(error) as caught:
        apply(target, *ops)
    return caught.value.code


def test_every_op_is_registered():
    assert sorted(OPS) == sorted(
        ["add_line", "remove_line", "set_qty", "adjust_qty", "replace_sku", "set_data", "merge_lines", "set_line_meta", "override_price"]
    )


def test_add_line_reads_its_fields():
    target = apply(session(), {"op": "add_line", "sku": " ESP ", "qty": Decimal("2.500"), "unit_price_q": "450", "meta": {"k": 1}})
    (line,) = target.lines
    assert (line["sku"], line["name"], line["qty"], line["unit_price_q"], line["meta"]) == ("ESP", "ESP", "2.5", 450, {"k": 1})
    assert line["line_id"].startswith("L-") and len(line["line_id"]) == 10


@pytest.mark.parametrize(
    ("op", "code"),
    [
        ({"op": "add_line", "qty": 1}, "missing_field"),
        ({"op": "add_line", "sku": "  ", "qty": 1}, "missing_field"),
        ({"op": "add_line", "sku": 5, "qty": 1}, "invalid_field"),
        ({"op": "add_line", "sku": "x" * 65, "qty": 1}, "invalid_field"),
        ({"op": "add_line", "sku": "A", "qty": 0}, "invalid_qty"),
        ({"op": "add_line", "sku": "A", "qty": True}, "invalid_qty"),
        ({"op": "add_line", "sku": "A", "qty": "1.0001"}, "invalid_qty"),
        ({"op": "add_line", "sku": "A", "qty": 1, "unit_price_q": -1}, "invalid_price"),
        ({"op": "add_line", "sku": "A", "qty": 1, "unit_price_q": 1.5}, "invalid_price"),
        ({"op": "add_line", "sku": "A", "qty": 1, "meta": []}, "invalid_field"),
        ({"op": "add_line", "sku": "A", "qty": 1, "meta": {"price_override": {}}}, "reserved_path"),
        ({"op": "add_line", "sku": "A", "qty": 1, "name": "n" * 256}, "invalid_field"),
        ({"op": "nope"}, "unsupported_op"),
        ({"sku": "A"}, "missing_field"),
        ({"op": "set_data", "path": "checks.x", "value": 1}, "reserved_path"),
        ({"op": "set_data", "path": "a..b", "value": 1}, "invalid_path"),
        ({"op": "set_data", "path": "a"}, "missing_field"),
        ({"op": "set_data", "path": "a", "value": float("nan")}, "invalid_field"),
        ({"op": "remove_line", "line_id": "L-9"}, "unknown_line_id"),
        ({"op": "remove_line", "line_id": 3}, "unknown_line_id"),
        ({"op": "set_qty", "line_id": "L-0", "qty": "-2"}, "invalid_qty"),
        ({"op": "merge_lines", "from_line_id": "L-0", "into_line_id": "L-0"}, "invalid_merge"),
        ({"op": "merge_lines", "from_line_id": "L-0", "into_line_id": "L-1"}, "invalid_merge"),
        ({"op": "set_line_meta", "line_id": "L-0", "path": "price_override", "value": 1}, "reserved_path"),
        ({"op": "override_price", "line_id": "L-0", "reason": "r"}, "missing_field"),
        ({"op": "override_price", "line_id": "L-0", "unit_price_q": 1, "reason": 5}, "invalid_field"),
        ({"op": "adjust_qty", "line_id": "L-0", "delta": "0"}, "invalid_qty"),
        ({"op": "adjust_qty", "line_id": "L-0"}, "missing_field"),
    ],
)
def test_op_errors_carry_their_code_and_position(op, code):
    target = session(("ESP", "1", 450), ("CRO", "2", 900))
    with pytest.raises(ValidationError) as caught:
        apply(target, {"op": "set_data", "path": "first", "value": 1}, op)
    assert caught.value.code == code
    assert caught.value.context["op_index"] == 1


def test_ops_must_be_a_non_empty_list_of_objects():
    assert code_of(session()) == "missing_field"
    with pytest.raises(ValidationError) as caught:
        apply_ops(session(), "add_line", ctx={})
    assert caught.value.code == "missing_field"
    with pytest.raises(ValidationError) as caught:
        apply_ops(session(), ["add_line"], ctx={})
    assert caught.value.code == "unsupported_op" and caught.value.context["op_index"] == 0


def test_external_pricing_needs_a_price():
    target = session(pricing="external")
    assert code_of(target, {"op": "add_line", "sku": "A", "qty": 1}) == "missing_unit_price_q"
    assert code_of(session(("A", "1", 10), pricing="external"), {"op": "replace_sku", "line_id": "L-0", "sku": "B"}) == "missing_unit_price_q"


def test_a_locked_session_refuses_item_ops_but_not_set_data():
    target = session(("A", "1", 10), edit="locked")
    for op in (
        {"op": "add_line", "sku": "B", "qty": 1},
        {"op": "adjust_qty", "line_id": "L-0", "delta": 1},
        {"op": "remove_line", "line_id": "L-0"},
    ):
        assert code_of(target, op, error=SessionError) == "locked"
    assert apply(target, {"op": "set_data", "path": "notes", "value": "ok"}).data == {"notes": "ok"}


@pytest.mark.parametrize(("qty", "delta", "after"), [("1", "1", "2"), ("2", "-1", "1"), ("1.5", "+0.25", "1.75"), ("2", -3, None), ("1", "-1", None)])
def test_adjust_qty_steps_and_removes_at_zero(qty, delta, after):
    target = apply(session(("A", qty, 10), ("B", "1", 5)), {"op": "adjust_qty", "line_id": "L-0", "delta": delta})
    if after is None:
        assert [line["sku"] for line in target.lines] == ["B"]
    else:
        assert target.lines[0]["qty"] == after


def test_adjust_qty_cannot_pass_the_largest_quantity():
    assert code_of(session(("A", "999999", 10)), {"op": "adjust_qty", "line_id": "L-0", "delta": 2}) == "invalid_qty"


def test_merge_override_and_replace_sku():
    target = apply(
        session(("A", "1", 100), ("A", "2", 100), ("B", "1", 50)),
        {"op": "merge_lines", "from_line_id": "L-0", "into_line_id": "L-1"},
        {"op": "override_price", "line_id": "L-1", "unit_price_q": 80, "reason": " friend "},
        {"op": "override_price", "line_id": "L-1", "unit_price_q": 70, "reason": "again"},
        {"op": "replace_sku", "line_id": "L-2", "sku": "C", "unit_price_q": 60, "name": "Cee"},
        {"op": "set_line_meta", "line_id": "L-2", "path": "mods.no", "value": "onions"},
    )
    a, c = target.lines
    assert a["qty"] == "3" and a["unit_price_q"] == 70
    assert a["meta"]["price_override"] == {"from": 100, "to": 70, "reason": "again", "actor": "unit"}
    assert (c["sku"], c["name"], c["unit_price_q"], c["meta"]) == ("C", "Cee", 60, {"mods": {"no": "onions"}})


def test_set_data_builds_the_path_and_refuses_to_go_through_a_value():
    target = apply(session(data={"a": 1}), {"op": "set_data", "path": "customer.name", "value": "Ana"})
    assert target.data == {"a": 1, "customer": {"name": "Ana"}}
    assert code_of(target, {"op": "set_data", "path": "a.b", "value": 2}) == "invalid_path"
