"""ESC/POS printing: kitchen tickets and receipts reach a fake network printer on 127.0.0.1 (its bytes
recorded), and a printer that is off leaves the job retrying — handed over, never failed, never lost."""

from __future__ import annotations

import socket
import socketserver
import threading
import time

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from omniman import engine, registry
from omniman.contrib.printing import Printer, channel_printers, send_rows
from omniman.contrib.printing.exceptions import PrintingError
from omniman.contrib.printing.handlers import KITCHEN_TOPIC, RECEIPT_TOPIC
from omniman.models import Directive, Order
from omniman.receipts import Row
from omniman.services import ModifyService, SessionService
from tests.factories import commit, make_channel

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.contrib("omniman.contrib.printing")]

ESC_CUT = b"\x1dV"  # GS V: the paper cut python-escpos sends


class FakePrinter:
    """A raw TCP "printer" on 127.0.0.1: records the bytes of each connection (one job per connection)."""

    def __init__(self, port: int = 0):
        self.jobs: list[bytes] = []
        printer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                chunks = []
                while data := self.request.recv(65536):
                    chunks.append(data)
                printer.jobs.append(b"".join(chunks))

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_for(self, count: int, timeout: float = 5.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while len(self.jobs) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.jobs)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def printers():
    made: list[FakePrinter] = []

    def start(port: int = 0) -> FakePrinter:
        made.append(FakePrinter(port))
        return made[-1]

    yield start
    for printer in made:
        printer.close()


def free_port() -> int:
    """A port nothing listens on (a printer that is off: the connection is refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def table_order(channel, *items, table="4") -> Order:
    session = SessionService.open_session(channel.code, handle_type="table", handle_ref=table)
    ops = [
        {"op": "add_line", "sku": sku, "name": name, "qty": qty, "unit_price_q": price, **({"meta": meta} if meta else {})}
        for sku, name, qty, price, meta in items
    ]
    session = ModifyService.modify_session(session.session_key, channel.code, ops)
    return Order.objects.get(ref=commit(session)["order_ref"])


def tables_channel(printers_config, **extra):
    return make_channel(
        name="Café Central",
        config={
            "post_commit_directives": [KITCHEN_TOPIC],
            "order_flow": {"table_handle_types": ["table"]},
            "printers": printers_config,
            **extra,
        },
    )


def make_due():
    Directive.objects.filter(status="queued").update(available_at=timezone.now())


# -- the printer config -----------------------------------------------------------------------


def test_printers_are_read_from_the_channel_config():
    found = channel_printers(
        {"printers": {"receipt": "10.0.0.5", "kitchen": {"host": "10.0.0.6", "port": 9101, "paper": 58, "timeout": 3},
                      "stations": {"bar": "10.0.0.7:9200"}}}
    )
    assert found["receipt"] == Printer("receipt", "10.0.0.5", 9100, 80, 10.0)
    assert (found["kitchen"].address, found["kitchen"].paper, found["kitchen"].columns) == ("10.0.0.6:9101", 58, 32)
    assert found["station:bar"].address == "10.0.0.7:9200"
    assert channel_printers({}) == {} and channel_printers({"printers": {"kitchen": ""}}) == {}


@pytest.mark.parametrize(
    "config",
    [{"printers": []}, {"printers": {"kitchen": {"port": 9100}}}, {"printers": {"kitchen": "h:notaport"}},
     {"printers": {"receipt": {"host": "h", "paper": 76}}}, {"printers": {"stations": ["bar"]}}],
)
def test_a_bad_printer_config_is_refused_with_its_code(config):
    with pytest.raises(PrintingError) as error:
        channel_printers(config)
    assert error.value.code == "invalid_printer_config"


def test_a_channel_with_an_unreadable_printer_config_is_reported_by_the_system_check():
    from omniman.contrib.printing.checks import check_printer_configs

    make_channel("good", config={"printers": {"kitchen": "10.0.0.6"}})
    make_channel("bad", config={"printers": {"kitchen": {"port": 9100}}})
    [warning] = check_printer_configs(databases=["default"])
    assert warning.id == "omniman_printing.W001" and warning.obj == "Channel bad" and "kitchen" in warning.msg


def test_the_handlers_are_registered():
    assert registry.get_directive_handler(KITCHEN_TOPIC) is not None
    assert registry.get_directive_handler(RECEIPT_TOPIC) is not None


# -- bytes on the wire ------------------------------------------------------------------------


def test_rows_go_out_as_esc_pos_text_with_styles_and_a_cut(printers):
    fake = printers()
    printer = Printer("receipt", "127.0.0.1", fake.port, paper=58)
    send_rows(printer, [Row("Café", align="center", bold=True, large=True), Row("Total", "R$\u00a012,00"), Row(rule=True)])
    [job] = fake.wait_for(1)
    # ESC ! 0x10 (double height), ESC E 1 (bold), ESC a 1 (centred), then the text in the printer's code
    # page (CP437, selected with ESC t 0: "é" is 0x82).
    assert b"\x1b!\x10\x1bE\x01\x1ba\x01\x1bt\x00Caf\x82\n" in job
    # The right-hand text flush right on 32 columns (58 mm), the no-break space printed as a space, plain style.
    assert b"\x1bE\x00\x1ba\x00Total" + b" " * (32 - len("Total") - len("R$ 12,00")) + b"R$ 12,00\n" in job
    assert b"-" * 32 + b"\n" in job and b"-" * 33 not in job
    assert job.endswith(b"\x1bd\x06" + ESC_CUT + b"\x00")  # feed 6 lines, full cut


def test_a_printer_that_is_off_raises_printer_unreachable():
    printer = Printer("kitchen", "127.0.0.1", free_port(), timeout=2)
    with pytest.raises(PrintingError) as error:
        send_rows(printer, [Row("x")])
    assert error.value.code == "printer_unreachable"
    assert error.value.context == {"printer": "kitchen", "address": printer.address}


# -- the kitchen ticket -----------------------------------------------------------------------


def test_a_committed_order_prints_its_kitchen_ticket(printers):
    kitchen = printers()
    channel = tables_channel({"kitchen": kitchen.address})
    order = table_order(channel, ("ESP", "Espresso", "2", 600, {"note": "no sugar"}), ("PDQ", "Cheese bread", "1", 800, None))
    directive = Directive.objects.get(topic=KITCHEN_TOPIC)
    assert directive.payload["order_ref"] == order.ref

    assert engine.process(topics=[KITCHEN_TOPIC]).outcomes == [(directive.pk, "done")]
    [job] = kitchen.wait_for(1)
    assert b"KITCHEN" in job and b"Table 4" in job and order.ref.encode() in job
    assert b"2 x Espresso" in job and b"  no sugar" in job and b"1 x Cheese bread" in job
    assert ESC_CUT in job


def test_items_go_to_their_stations_printer_one_directive_each(printers):
    kitchen, bar = printers(), printers()
    channel = tables_channel({"kitchen": kitchen.address, "stations": {"bar": bar.address}})
    table_order(channel, ("ESP", "Espresso", "1", 600, {"station": "bar"}), ("TST", "Toast", "1", 900, {"station": "kitchen"}))

    first = engine.process(topics=[KITCHEN_TOPIC])
    assert [outcome for _, outcome in first.outcomes] == ["done"]  # the split
    children = Directive.objects.filter(topic=KITCHEN_TOPIC, status="queued").order_by("id")
    assert sorted(child.payload["printer"] for child in children) == ["kitchen", "station:bar"]
    assert [outcome for _, outcome in engine.process(topics=[KITCHEN_TOPIC]).outcomes] == ["done", "done"]
    [kitchen_job], [bar_job] = kitchen.wait_for(1), bar.wait_for(1)
    assert b"1 x Toast" in kitchen_job and b"Espresso" not in kitchen_job
    assert b"BAR" in bar_job and b"1 x Espresso" in bar_job and b"Toast" not in bar_job


def test_no_kitchen_printer_means_nothing_printed_and_the_directive_done():
    channel = tables_channel({"receipt": "127.0.0.1:1"})
    table_order(channel, ("ESP", "Espresso", "1", 600, None))
    assert [outcome for _, outcome in engine.process(topics=[KITCHEN_TOPIC]).outcomes] == ["done"]


def test_a_printer_that_is_off_leaves_the_ticket_retrying_never_lost(printers):
    port = free_port()
    channel = tables_channel({"kitchen": {"host": "127.0.0.1", "port": port, "timeout": 2}})
    order = table_order(channel, ("ESP", "Espresso", "3", 600, None))
    directive = Directive.objects.get(topic=KITCHEN_TOPIC)
    max_attempts = int(settings.OMNIMAN.get("DIRECTIVE_MAX_ATTEMPTS", 5))

    # Every attempt fails: retried with backoff, the error on the row.
    for attempt in range(1, max_attempts):
        before = timezone.now()
        assert engine.process(topics=[KITCHEN_TOPIC]).outcomes == [(directive.pk, "retried")]
        directive.refresh_from_db()
        assert (directive.status, directive.attempts) == ("queued", attempt)
        assert "printer_unreachable" in directive.last_error and directive.available_at > before
        make_due()

    # The last attempt hands the job to a fresh directive, due after the longest backoff: nothing failed.
    before = timezone.now()
    assert engine.process(topics=[KITCHEN_TOPIC]).outcomes == [(directive.pk, "done")]
    successor = Directive.objects.get(topic=KITCHEN_TOPIC, status="queued")
    assert successor.payload["order_ref"] == order.ref and successor.payload["handover"] == 1
    assert "printer_unreachable" in successor.payload["last_error"]
    assert successor.available_at >= before + timezone.timedelta(seconds=float(settings.OMNIMAN.get("DIRECTIVE_BACKOFF_MAX_SECONDS", 300))) - timezone.timedelta(seconds=1)
    assert not Directive.objects.filter(status="failed").exists()
    assert engine.process(topics=[KITCHEN_TOPIC]).outcomes == []  # not due yet

    # The printer comes back on the same address: the ticket prints, once.
    printer = printers(port)
    make_due()
    assert engine.process(topics=[KITCHEN_TOPIC]).outcomes == [(successor.pk, "done")]
    [job] = printer.wait_for(1)
    assert b"3 x Espresso" in job and order.ref.encode() in job
    assert engine.process(topics=[KITCHEN_TOPIC]).outcomes == []
    time.sleep(0.1)
    assert len(printer.jobs) == 1


def test_a_missing_printer_config_is_an_error_that_retries_not_a_handover():
    channel = tables_channel({})
    order = table_order(channel, ("ESP", "Espresso", "1", 600, None))
    Directive.objects.all().delete()
    directive = Directive.objects.enqueue(KITCHEN_TOPIC, {"order_ref": order.ref, "printer": "kitchen"})
    with override_settings(OMNIMAN={**settings.OMNIMAN, "DIRECTIVE_MAX_ATTEMPTS": 1}):
        assert engine.process(topics=[KITCHEN_TOPIC]).outcomes == [(directive.pk, "failed")]
    directive.refresh_from_db()
    assert "printer_not_configured" in directive.last_error
    assert Directive.objects.count() == 1


# -- the receipt -----------------------------------------------------------------------------


def test_print_receipt_of_an_order_prints_its_bill_on_the_receipt_printer(printers):
    receipt_printer = printers()
    channel = tables_channel({"receipt": {"host": "127.0.0.1", "port": receipt_printer.port, "paper": 58}}, post_commit_directives=[])
    order = table_order(channel, ("ESP", "Espresso", "2", 600, None))
    directive = Directive.objects.enqueue(RECEIPT_TOPIC, {"order_ref": order.ref})
    assert engine.process(topics=[RECEIPT_TOPIC]).outcomes == [(directive.pk, "done")]
    [job] = receipt_printer.wait_for(1)
    assert b"Table 4" in job and order.ref.encode() in job
    assert b"2 x Espresso" in job and b"-" * 32 in job and b"-" * 33 not in job  # 58 mm: 32 columns
    assert b"NOT A RECEIPT" in job  # nothing paid: the bill, not a receipt


def test_a_settled_bill_prints_its_receipt_on_the_receipt_printer(printers):
    from omniman.services import BillService, PaymentService

    receipt_printer = printers()
    channel = tables_channel({"receipt": receipt_printer.address}, post_commit_directives=[])
    order = table_order(channel, ("ESP", "Espresso", "2", 600, None))
    bill = BillService.open(channel.code, handle_type="table", handle_ref="4")
    PaymentService.tender(bill.ref, method="cash", tendered_q=2000, idempotency_key="k1", actor="user:ana")
    [directive] = Directive.objects.filter(topic=RECEIPT_TOPIC)
    assert directive.payload == {"bill_ref": bill.ref}
    assert engine.process(topics=[RECEIPT_TOPIC]).outcomes == [(directive.pk, "done")]
    [job] = receipt_printer.wait_for(1)
    assert b"RECEIPT" in job and b"NOT A RECEIPT" not in job and bill.ref.encode() in job and order.ref.encode() in job
    assert b"2 x Espresso" in job and b"Cash" in job and b"R$8.00" in job  # the change of R$ 20.00 for R$ 12.00


def test_print_receipt_with_preview_prints_the_bill_marked_not_a_receipt(printers):
    from omniman.services import BillService

    receipt_printer = printers()
    channel = tables_channel({"receipt": receipt_printer.address}, post_commit_directives=[])
    table_order(channel, ("ESP", "Espresso", "1", 600, None))
    bill = BillService.open(channel.code, handle_type="table", handle_ref="4")
    directive = Directive.objects.enqueue(RECEIPT_TOPIC, {"bill_ref": bill.ref, "preview": True})
    assert engine.process(topics=[RECEIPT_TOPIC]).outcomes == [(directive.pk, "done")]
    [job] = receipt_printer.wait_for(1)
    assert b"BILL - NOT A RECEIPT" in job and b"This is not a receipt." in job and b"Due" in job


def test_a_printed_conta_carries_the_pix_qr_as_a_native_esc_pos_qr_code(printers):
    from omniman import pix
    from omniman.services import BillService

    receipt_printer = printers()
    payments = {"methods": ["cash", "pix"], "pix": {"key": "cafe@example.com", "merchant_name": "Cafe", "merchant_city": "Recife"}}
    channel = tables_channel({"receipt": receipt_printer.address}, post_commit_directives=[], payments=payments)
    table_order(channel, ("ESP", "Espresso", "2", 600, None))
    bill = BillService.open(channel.code, handle_type="table", handle_ref="4")
    directive = Directive.objects.enqueue(RECEIPT_TOPIC, {"bill_ref": bill.ref, "preview": True})
    assert engine.process(topics=[RECEIPT_TOPIC]).outcomes == [(directive.pk, "done")]
    [job] = receipt_printer.wait_for(1)
    payload = pix.brcode_for(channel.config, amount_q=1200, txid=bill.ref)
    # GS ( k: the printer's own QR (model 2, store the data, print it), the payload inside, centred.
    store = b"\x1d(k" + (len(payload) + 3).to_bytes(2, "little") + b"1P0" + payload.encode()
    assert store in job and b"\x1d(k\x03\x001Q0" in job and b"\x1ba\x01" in job
    assert b"Pay with Pix" in job
