"""Post-processing of the generated OpenAPI document: what the serializers cannot tell drf-spectacular."""

from __future__ import annotations

from typing import Any

NUL_NOTE = (
    " No text anywhere in a request may contain NUL (U+0000): a JSON body with one answers 400 `parse_error`, "
    "a path or query with one (or another control character) 400 `invalid`."
)


def postprocess(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]`` (after the default enum hook)."""
    schemas = result.get("components", {}).get("schemas", {})
    delivery = schemas.get("ExternalOrderRequestRequest", {}).get("properties", {})
    if "items" in delivery:
        delivery["items"]["minItems"] = 1  # ListSerializer(allow_empty=False) is not reported
    from omniman.api import bills, shifts

    bills.postprocess(result)
    shifts.postprocess(result)
    info = result.setdefault("info", {})
    info["description"] = info.get("description", "") + NUL_NOTE
    return result
