"""Real threads on PostgreSQL: a move between tables racing a change on either tab — one applies, the other is
refused with ``stale_rev``; nothing is duplicated or lost. And moves in opposite directions never deadlock."""

from __future__ import annotations

import pytest

from omniman.models import Session, TableMove
from omniman.services import FloorService, ModifyService, SessionService
from tests.factories import make_channel
from tests.threads import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROUNDS = 6


def tab(channel, table, *prices):
    session = SessionService.open_session(channel.code, handle_type="table", handle_ref=table)
    ops = [{"op": "add_line", "sku": f"{table}-{i}", "qty": 1, "unit_price_q": p} for i, p in enumerate(prices)]
    return ModifyService.modify_session(session.session_key, channel.code, ops) if ops else session


def lines_everywhere(channel) -> list[str]:
    return sorted(line["sku"] for s in Session.objects.filter(channel=channel, state="open") for line in s.lines)


@pytest.mark.parametrize("racing_side", ["source", "target"])
def test_a_transfer_racing_an_add_on_either_tab_one_applies_the_other_409(racing_side):
    channel = make_channel(f"race-{racing_side}")
    for attempt in range(ROUNDS):
        four = tab(channel, f"4-{attempt}", 100, 200, 300)
        five = tab(channel, f"5-{attempt}", 50)
        added = four if racing_side == "source" else five

        def worker(index, four=four, five=five, added=added):
            if index == 0:
                return FloorService.transfer_lines(
                    four.session_key, channel.code, line_ids=[line["line_id"] for line in four.lines[:2]],
                    to_table=five.handle_ref, expected_rev=four.rev, to_expected_rev=five.rev,
                )
            return ModifyService.modify_session(
                added.session_key, channel.code, [{"op": "add_line", "sku": f"NEW-{attempt}", "qty": 1, "unit_price_q": 7}],
                expected_rev=added.rev,
            )

        results = run_together(worker, count=2)
        kinds = sorted(kind for kind, _ in results)
        assert kinds == ["error", "ok"], results
        assert [value for kind, value in results if kind == "error"] == ["stale_rev"]
        source, target = Session.objects.get(pk=four.pk), Session.objects.get(pk=five.pk)
        transferred = results[0][0] == "ok"
        assert TableMove.objects.filter(from_table=four.handle_ref).count() == (1 if transferred else 0)
        skus = sorted(line["sku"] for s in (source, target) for line in s.lines)
        expected = sorted([f"{four.handle_ref}-0", f"{four.handle_ref}-1", f"{four.handle_ref}-2", f"{five.handle_ref}-0"]
                          + ([] if transferred else [f"NEW-{attempt}"]))
        assert skus == expected  # nothing duplicated, nothing lost
        assert source.total_q + target.total_q == sum(
            int(line["line_total_q"]) for s in (source, target) for line in s.lines)
        assert source.total_q + target.total_q == 650 + (0 if transferred else 7)
        if transferred:
            assert [line["sku"] for line in target.lines] == [f"{five.handle_ref}-0", f"{four.handle_ref}-0", f"{four.handle_ref}-1"]
            assert (source.rev, target.rev) == (four.rev + 1, five.rev + 1)


def test_moves_in_opposite_directions_do_not_deadlock():
    channel = make_channel("cross")
    a = tab(channel, "1", *range(1, 9))
    b = tab(channel, "2", *range(11, 19))

    def worker(index):
        source, target = (a, b) if index % 2 == 0 else (b, a)
        line = source.lines[index // 2]["line_id"]
        return FloorService.transfer_lines(source.session_key, channel.code, line_ids=[line], to_table=target.handle_ref)

    results = run_together(worker, count=8)
    assert all(kind == "ok" for kind, _ in results), results
    assert len(lines_everywhere(channel)) == 16
    assert TableMove.objects.filter(channel=channel).count() == 8
