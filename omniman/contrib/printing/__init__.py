"""ESC/POS network printers: the kitchen ticket and the receipt, as directives.

A channel names its printers in ``config["printers"]``::

    "printers": {
        "receipt": "192.168.0.50:9100",                       # host[:port] (port 9100 by default)
        "kitchen": {"host": "192.168.0.51", "port": 9100,     # or an object:
                    "paper": 80, "timeout": 5},               #   paper 58|80 mm, socket timeout (s)
        "stations": {"bar": "192.168.0.52"},                  # kitchen tickets per station
    }

Two directive topics (``handlers.py``):

* ``print.kitchen_ticket`` — put it in the channel's ``post_commit_directives``:
  each committed order prints its items on its station's printer
  (``stations``, by the item's ``meta.station`` or the catalog's), the rest on
  the ``kitchen`` printer; one directive per printer, so a printer that is off
  never reprints on the others;
* ``print.receipt`` — a settled bill's receipt on the ``receipt`` printer
  (enqueued by the kernel when a bill settles and the channel has one).

A printer that does not answer raises ``printer_unreachable``: the directive
retries with backoff; on its last attempt it hands the job to a fresh directive
that waits the longest backoff, so a ticket is never dropped while a printer is
off. Bytes go out through ``python-escpos`` (``pip install
django-omniman[printing]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omniman.contrib.printing.exceptions import PrintingError
from omniman.receipts import PAPER_COLUMNS, Row

DEFAULT_PORT = 9100
DEFAULT_TIMEOUT = 10.0
RECEIPT = "receipt"
KITCHEN = "kitchen"
STATION_PREFIX = "station:"


@dataclass(frozen=True)
class Printer:
    """One printer: its name in the channel (``receipt``, ``kitchen``, ``station:bar``) and address."""

    name: str
    host: str
    port: int = DEFAULT_PORT
    paper: int = 80
    timeout: float = DEFAULT_TIMEOUT
    codepage: str = ""

    @property
    def columns(self) -> int:
        return PAPER_COLUMNS.get(self.paper, 48)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def _printer(name: str, spec: Any) -> Printer:
    if isinstance(spec, str):
        host, _, port = spec.strip().rpartition(":") if ":" in spec else (spec.strip(), "", str(DEFAULT_PORT))
        spec = {"host": host, "port": port}
    if not isinstance(spec, dict) or not str(spec.get("host") or "").strip():
        raise PrintingError("invalid_printer_config", f"printers.{name}: a printer needs a host.", {"printer": name})
    try:
        port = int(spec.get("port") or DEFAULT_PORT)
        paper = int(spec.get("paper") or 80)
        timeout = float(spec.get("timeout") or DEFAULT_TIMEOUT)
    except (TypeError, ValueError):
        raise PrintingError("invalid_printer_config", f"printers.{name}: port, paper and timeout are numbers.", {"printer": name}) from None
    if not 0 < port < 65536 or paper not in PAPER_COLUMNS or timeout <= 0:
        raise PrintingError(
            "invalid_printer_config", f"printers.{name}: port 1-65535, paper 58 or 80, a positive timeout.", {"printer": name}
        )
    return Printer(name=name, host=str(spec["host"]).strip(), port=port, paper=paper, timeout=timeout, codepage=str(spec.get("codepage") or ""))


def channel_printers(config: dict[str, Any] | None) -> dict[str, Printer]:
    """The printers a channel's ``config`` names, by name (``receipt``, ``kitchen``, ``station:<station>``)."""
    spec = (config or {}).get("printers")
    spec = {} if spec is None else spec
    if not isinstance(spec, dict):
        raise PrintingError("invalid_printer_config", "printers must be an object.", {})
    found: dict[str, Printer] = {}
    for name in (RECEIPT, KITCHEN):
        if spec.get(name):
            found[name] = _printer(name, spec[name])
    stations = spec.get("stations")
    stations = {} if stations is None else stations
    if not isinstance(stations, dict):
        raise PrintingError("invalid_printer_config", "printers.stations must be an object.", {})
    for station, station_spec in stations.items():
        if station_spec:
            found[STATION_PREFIX + str(station)] = _printer(STATION_PREFIX + str(station), station_spec)
    return found


def printer_named(config: dict[str, Any] | None, name: str) -> Printer:
    printer = channel_printers(config).get(name)
    if printer is None:
        raise PrintingError("printer_not_configured", f"The channel has no {name!r} printer.", {"printer": name})
    return printer


def _plain(text: str) -> str:
    """What a thermal printer can print: no-break and thin spaces as spaces, "×" as "x"."""
    return text.replace("\u00a0", " ").replace("\u202f", " ").replace("\u2009", " ").replace("×", "x").replace("—", "-").replace("…", "...")


def send_rows(printer: Printer, rows: list[Row], *, cut: bool = True) -> None:
    """Print ``rows`` on ``printer`` (ESC/POS over TCP); raises ``printer_unreachable`` if it does not answer."""
    try:
        from escpos.exceptions import DeviceNotFoundError
        from escpos.printer import Network
    except ImportError:  # pragma: no cover - the printing extra is installed in tests
        raise PrintingError(
            "printer_driver_missing", "python-escpos is not installed: pip install django-omniman[printing].", {}
        ) from None
    device = Network(printer.host, port=printer.port, timeout=printer.timeout)
    width = printer.columns
    try:
        device.open()
        if printer.codepage:
            device.charcode(printer.codepage)
        for row in rows:
            if row.qr:
                device.set(align="center", bold=False, normal_textsize=True)
                device.qr(row.qr, native=True, size=6 if printer.paper == 80 else 4)
                continue
            if row.rule:
                device.set(align="left", bold=False, normal_textsize=True)
                device.text("-" * width + "\n")
                continue
            device.set(
                align="center" if row.align == "center" else "left",
                bold=row.bold,
                double_height=row.large,
                double_width=False,
                normal_textsize=not row.large,
            )
            left, right = _plain(row.left), _plain(row.right)
            if right:
                room = max(width - len(right) - 1, 1)
                left = left if len(left) <= room else left[: room - 1] + "."
                device.text(left + " " * (width - len(left) - len(right)) + right + "\n")
            else:
                device.text(left + "\n")
        device.set(align="left", bold=False, normal_textsize=True)
        if cut:
            device.cut()
    except DeviceNotFoundError as exc:
        raise PrintingError(
            "printer_unreachable", f"The {printer.name} printer at {printer.address} does not answer: {exc}",
            {"printer": printer.name, "address": printer.address},
        ) from None
    except OSError as exc:
        raise PrintingError(
            "printer_unreachable", f"The {printer.name} printer at {printer.address} stopped answering: {exc}",
            {"printer": printer.name, "address": printer.address},
        ) from None
    finally:
        device.close()


__all__ = [
    "KITCHEN",
    "RECEIPT",
    "STATION_PREFIX",
    "Printer",
    "PrintingError",
    "channel_printers",
    "printer_named",
    "send_rows",
]
