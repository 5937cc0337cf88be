"""Pix BR Code: the payload matches the Banco Central's published example to the CRC, and draws as an inline QR."""

from __future__ import annotations

import re

import pytest

from omniman import pix
from omniman.exceptions import ValidationError

# The static QR example of the BCB's "Manual de Padrões para Iniciação do Pix" (key, name, city; no amount).
BCB_EXAMPLE = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)


def test_crc16_is_ccitt_false_on_the_standard_check_string():
    assert pix.crc16("123456789") == "29B1"
    assert pix.crc16(b"") == "FFFF"


def test_the_published_bcb_example_is_rebuilt_to_the_last_character_crc_included():
    payload = pix.brcode(key="123e4567-e12b-12d1-a456-426655440000", merchant_name="Fulano de Tal", merchant_city="BRASILIA")
    assert payload == BCB_EXAMPLE
    assert payload.endswith("63041D3D")


def test_parse_reads_the_published_example_and_checks_its_crc():
    fields = pix.parse(BCB_EXAMPLE)
    assert fields["26"] == {"00": "br.gov.bcb.pix", "01": "123e4567-e12b-12d1-a456-426655440000"}
    assert (fields["52"], fields["53"], fields["58"], fields["59"], fields["60"]) == ("0000", "986", "BR", "Fulano de Tal", "BRASILIA")
    assert fields["62"] == {"05": "***"} and fields["63"] == "1D3D"
    tampered = BCB_EXAMPLE.replace("Fulano", "Fulana")
    with pytest.raises(ValidationError) as error:
        pix.parse(tampered)
    assert error.value.code == "invalid_pix"


def test_amount_txid_and_description_are_written_and_the_crc_covers_them():
    payload = pix.brcode(
        key="loja@example.com", merchant_name="Café Três Irmãos Ltda — Matriz", merchant_city="São José dos Campos",
        amount_q=123456, txid="BIL-20261203-ABC123", description="Mesa 4",
    )
    fields = pix.parse(payload)
    assert fields["54"] == "1234.56"
    assert fields["26"] == {"00": "br.gov.bcb.pix", "01": "loja@example.com", "02": "Mesa 4"}
    assert fields["59"] == "Cafe Tres Irmaos Ltda Mat"  # accents dropped, the dash too, cut at 25
    assert fields["60"] == "Sao Jose dos Ca" and len(fields["60"]) == 15
    assert fields["62"] == {"05": "BIL20261203ABC123"}
    assert payload.isascii()
    # The amount's field sits between the currency and the country, as the standard orders them.
    assert "53039865407" "1234.56" "5802BR" in payload
    assert pix.crc16(payload[:-4]) == payload[-4:]
    assert pix.brcode(key="k", merchant_name="N", merchant_city="C", amount_q=5).count("54040.05") == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"key": "", "merchant_name": "N", "merchant_city": "C"},
        {"key": "x" * 78, "merchant_name": "N", "merchant_city": "C"},
        {"key": "k", "merchant_name": "", "merchant_city": "C"},
        {"key": "k", "merchant_name": "N", "merchant_city": "— 🍕"},
        {"key": "k", "merchant_name": "N", "merchant_city": "C", "amount_q": 0},
        {"key": "k", "merchant_name": "N", "merchant_city": "C", "amount_q": -100},
        {"key": "k", "merchant_name": "N", "merchant_city": "C", "amount_q": 1.5},
    ],
)
def test_bad_input_is_refused_with_invalid_pix(kwargs):
    with pytest.raises(ValidationError) as error:
        pix.brcode(**kwargs)
    assert error.value.code == "invalid_pix"


def test_brcode_for_reads_the_channel_config_and_refuses_a_channel_without_a_key():
    config = {"payments": {"methods": ["cash", "pix"], "pix": {"key": "+5511999990000", "merchant_name": "Cafe", "merchant_city": "Recife"}}}
    fields = pix.parse(pix.brcode_for(config, amount_q=660, txid="t1"))
    assert fields["26"]["01"] == "+5511999990000" and fields["54"] == "6.60" and fields["62"]["05"] == "t1"
    for config in ({}, {"payments": {"methods": ["pix"]}}, {"payments": {"pix": {"key": " "}}}, None):
        with pytest.raises(ValidationError) as error:
            pix.brcode_for(config, amount_q=100)
        assert error.value.code == "pix_not_configured"


def test_the_qr_is_inline_svg_drawn_locally_and_encodes_the_payload():
    import segno

    svg = pix.qr_svg(BCB_EXAMPLE, title="Pix")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<?xml" not in svg and "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<title>Pix</title>" in svg and re.search(r'<path[^>]+d="M', svg)
    # Same symbol as segno draws for the payload at error level M: the QR carries exactly the payload.
    expected = segno.make_qr(BCB_EXAMPLE, error="m")
    assert expected.designator.endswith("-M")
    assert svg == expected.svg_inline(scale=4, border=2, title="Pix", dark="#000", light="#fff")
    assert pix.qr_svg(BCB_EXAMPLE) != pix.qr_svg(BCB_EXAMPLE.replace("***", "abc"))
