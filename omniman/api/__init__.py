"""The REST API (Django REST framework): the hub's headless face.

Views parse input, call one kernel service or selector, and serialize the
result. Errors become HTTP in one place, ``omniman.api.exceptions``.
"""
