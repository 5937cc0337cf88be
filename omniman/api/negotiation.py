"""Content negotiation with a shortcut for the usual request: no ``Accept``, ``*/*``, or the first renderer's type.

DRF's ``DefaultContentNegotiation`` reads ``Accept`` through ``request.headers``
(a copy of every header, built on first use) and parses it into media types on
every request. The API answers JSON only, and its clients send no ``Accept``,
``*/*`` or ``application/json``: for those, and without a query string (which
may hold ``?format=``) or a format suffix, the answer is known beforehand — the
first renderer with its own media type, as DRF would pick it. Anything else
(another type, a list, parameters, ``q`` values, an empty header) is DRF's.
"""

from __future__ import annotations

from rest_framework.negotiation import DefaultContentNegotiation

ANY = "*/*"


class ContentNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        if renderers and not format_suffix:
            meta = request.META
            renderer = renderers[0]
            media_type = renderer.media_type
            if not meta.get("QUERY_STRING") and ";" not in media_type:
                accept = meta.get("HTTP_ACCEPT")
                if accept is None or accept == ANY or accept == media_type:
                    return renderer, media_type
        return super().select_renderer(request, renderers, format_suffix)
