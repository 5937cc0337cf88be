"""JSON bodies the database can store: bounded size, no NUL characters, no lone surrogates, bounded nesting."""

from __future__ import annotations

import io
from typing import Any

from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

from omniman import conf

MAX_DEPTH = 32


class PayloadTooLarge(APIException):
    """413 ``payload_too_large``: the body is larger than ``OMNIMAN["API_MAX_BODY_BYTES"]``."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


class StrictJSONParser(JSONParser):
    """``JSONParser`` that refuses what PostgreSQL's text and ``jsonb`` columns would refuse with a 500.

    The body is read up to ``OMNIMAN["API_MAX_BODY_BYTES"]``: one byte more is a 413 (a body with a
    ``Content-Length`` over the cap is refused earlier, by ``CleanInputMiddleware``).
    """

    def parse(self, stream, media_type=None, parser_context=None):
        limit = conf.get("API_MAX_BODY_BYTES")
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        try:
            data = super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
        problem = _problem(data)
        if problem:
            raise ParseError(f"JSON parse error - {problem}.")
        return data


def _problem(value: Any) -> str:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(item, str):
            if "\x00" in item:
                return "text may not contain NUL characters"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "text must be valid Unicode (no lone surrogates)"
        elif isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                return "numbers must be finite"
        elif isinstance(item, dict):
            stack.extend((key, depth + 1) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return ""
