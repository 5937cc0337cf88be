"""The hot requests' fast path (``omniman.api.serializers.fast_validated_data``) agrees with their serializers.

Whatever body the fast path takes, the serializer takes too, with the same validated data (same values, same
JSON types); everything else (errors included) is left to the serializer. No database.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniman.api.serializers import (
    MAX_ITEMS,
    MAX_OPS,
    MAX_REV,
    CommitRequestSerializer,
    ModifyRequestSerializer,
    OpenSessionRequestSerializer,
    fast_validated_data,
)
from omniman.exceptions import ValidationError as KernelValidationError

# Values near every edge the serializers check: types, lengths, characters, ranges.
ODD = st.sampled_from([None, True, False, 0, 1, -1, 1.0, 1.5, "", " ", "\n", "x\n", "a b", "ção", "\ud800", "\x00", [], {}])
SLUG = st.one_of(
    st.sampled_from(["counter", "bench", "a" * 64, "a" * 65, "-_x9", "counter\n", "Counter", "ç"]),
    st.text(max_size=70),
    ODD,
)
TEXT = st.one_of(st.text(max_size=140), st.sampled_from(["", "a" * 32, "a" * 33, "a" * 128, "a" * 129]), ODD)
REV = st.one_of(
    st.sampled_from([0, 1, MAX_REV, MAX_REV + 1, -1, "5", 5.0, True, False, None]),
    st.integers(min_value=-(2**40), max_value=2**40),
)
QTY = st.one_of(st.sampled_from([1, 2, "1.5", "0", 0, 2.0, 1.5, -1, True, None, "x"]), st.integers(), st.text(max_size=5))
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
ENTRY = st.one_of(
    st.fixed_dictionaries(
        {"op": st.sampled_from(["add_line", "set_qty", "adjust_qty", "bogus"])},
        optional={"sku": TEXT, "qty": QTY, "delta": QTY, "unit_price_q": REV, "line_id": TEXT, "meta": st.dictionaries(st.text(max_size=4), JSON_LEAF, max_size=2)},
    ),
    st.dictionaries(st.text(max_size=6), JSON_LEAF, max_size=3),
    ODD,
)


def entries(max_size: int):
    return st.one_of(
        st.lists(ENTRY, max_size=4),
        st.sampled_from([[], [{"op": "add_line"}] * max_size, [{"op": "add_line"}] * (max_size + 1)]),
        ODD,
    )


OPEN = st.fixed_dictionaries(
    {},
    optional={
        "channel_code": SLUG,
        "handle_type": TEXT,
        "handle_ref": TEXT,
        "data": st.one_of(st.dictionaries(st.text(max_size=6), JSON_LEAF, max_size=3), ODD),
        "items": entries(MAX_ITEMS),
        "unknown": JSON_LEAF,
    },
)
MODIFY = st.fixed_dictionaries(
    {}, optional={"channel_code": SLUG, "ops": entries(MAX_OPS), "expected_rev": REV, "unknown": JSON_LEAF}
)
COMMIT = st.fixed_dictionaries(
    {},
    optional={
        "channel_code": SLUG,
        "idempotency_key": st.one_of(TEXT, st.sampled_from(["k" * 255, "k" * 256])),
        "expected_rev": REV,
        "unknown": JSON_LEAF,
    },
)


# Mostly valid bodies (the fast path's side of the comparison), each field now and then odd.
GOOD_SLUG = st.from_regex(r"[-a-zA-Z0-9_]{1,64}", fullmatch=True)
GOOD_TEXT = st.text(st.characters(max_codepoint=127), max_size=40)
GOOD_REV = st.one_of(st.none(), st.integers(min_value=0, max_value=MAX_REV))
GOOD_ENTRIES = st.lists(
    st.fixed_dictionaries(
        {"op": st.just("add_line"), "sku": GOOD_TEXT, "qty": st.one_of(st.integers(), st.text(max_size=5))},
        optional={"unit_price_q": st.integers(), "meta": st.dictionaries(st.text(max_size=4), JSON_LEAF, max_size=2)},
    ),
    min_size=1,
    max_size=4,
)


def mostly(good, odd):
    return st.one_of(good, good, good, odd)


NEAR_OPEN = st.fixed_dictionaries(
    {"channel_code": mostly(GOOD_SLUG, SLUG)},
    optional={
        "handle_type": mostly(GOOD_TEXT, TEXT),
        "handle_ref": mostly(GOOD_TEXT, TEXT),
        "data": st.dictionaries(st.text(max_size=6), JSON_LEAF, max_size=3),
        "items": mostly(GOOD_ENTRIES, entries(MAX_ITEMS)),
    },
)
NEAR_MODIFY = st.fixed_dictionaries(
    {"channel_code": mostly(GOOD_SLUG, SLUG), "ops": mostly(GOOD_ENTRIES, entries(MAX_OPS))},
    optional={"expected_rev": mostly(GOOD_REV, REV)},
)
NEAR_COMMIT = st.fixed_dictionaries(
    {"channel_code": mostly(GOOD_SLUG, SLUG), "idempotency_key": mostly(st.text(max_size=255), TEXT)},
    optional={"expected_rev": mostly(GOOD_REV, REV)},
)


def typed(value) -> str:
    """The value as JSON text: ``1``, ``1.0`` and ``true`` differ here, though Python finds them equal."""
    return json.dumps(value, sort_keys=True)


def agree(serializer_class, body: dict) -> None:
    fast = fast_validated_data(serializer_class, body)
    if fast is None:
        return
    serializer = serializer_class(data=body)
    try:
        valid = serializer.is_valid()
    except KernelValidationError as exc:  # invalid_qty (a JSON fraction): the fast path must not have taken it
        pytest.fail(f"the fast path took a body the serializer refuses with {exc.code}: {body!r}")
    assert valid, (body, serializer.errors)
    assert fast == serializer.validated_data
    assert typed(fast) == typed(serializer.validated_data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(OPEN, NEAR_OPEN))
def test_open_agrees_with_its_serializer(body):
    agree(OpenSessionRequestSerializer, body)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(MODIFY, NEAR_MODIFY))
def test_modify_agrees_with_its_serializer(body):
    agree(ModifyRequestSerializer, body)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(COMMIT, NEAR_COMMIT))
def test_commit_agrees_with_its_serializer(body):
    agree(CommitRequestSerializer, body)


OPS = [{"op": "add_line", "sku": "COFFEE", "qty": 2, "unit_price_q": 500}, {"op": "set_qty", "line_id": "L-1", "qty": "1.5"}]


@pytest.mark.parametrize(
    ("serializer_class", "body"),
    [
        (OpenSessionRequestSerializer, {"channel_code": "counter"}),
        (OpenSessionRequestSerializer, {"channel_code": "counter", "handle_type": "table", "handle_ref": "12"}),
        (OpenSessionRequestSerializer, {"channel_code": "counter", "data": {"customer": "Ana"}, "items": [{"sku": "A", "qty": 1}]}),
        (ModifyRequestSerializer, {"channel_code": "counter", "ops": OPS, "expected_rev": 0}),
        (ModifyRequestSerializer, {"channel_code": "counter", "ops": OPS, "expected_rev": None}),
        (ModifyRequestSerializer, {"channel_code": "counter", "ops": OPS}),
        (CommitRequestSerializer, {"channel_code": "counter", "idempotency_key": "k-1", "expected_rev": 3}),
        (CommitRequestSerializer, {"channel_code": "counter", "idempotency_key": ""}),
    ],
)
def test_the_usual_bodies_take_the_fast_path(serializer_class, body):
    fast = fast_validated_data(serializer_class, body)
    assert fast is not None
    serializer = serializer_class(data=body)
    assert serializer.is_valid(), serializer.errors
    assert typed(fast) == typed(serializer.validated_data)


def test_the_ops_are_copies():
    """As the serializer's: the kernel may change the ops it is given without touching the request's body."""
    body = {"channel_code": "counter", "ops": [dict(op) for op in OPS]}
    fast = fast_validated_data(ModifyRequestSerializer, body)
    assert fast["ops"] == body["ops"] and fast["ops"][0] is not body["ops"][0] and fast["ops"] is not body["ops"]


@pytest.mark.parametrize(
    "body",
    [
        {"channel_code": "counter", "ops": [{"op": "add_line", "sku": "A", "qty": 1.5}]},  # invalid_qty
        {"channel_code": "counter", "ops": []},  # min_length
        {"channel_code": "counter\n", "ops": OPS},  # DRF's slug pattern takes it: left to DRF
        {"channel_code": "counter", "ops": OPS, "expected_rev": "3"},  # DRF reads it as 3: left to DRF
        {"channel_code": "counter", "ops": OPS, "expected_rev": True},
        {"channel_code": 5, "ops": OPS},
    ],
)
def test_anything_unusual_is_left_to_the_serializer(body):
    assert fast_validated_data(ModifyRequestSerializer, body) is None


def test_other_serializers_have_no_fast_path():
    from omniman.api.serializers import SessionActionSerializer

    assert fast_validated_data(SessionActionSerializer, {"channel_code": "counter"}) is None
