"""Optional apps that make the headless kernel useful on day one (SPEC §7).

Each is an ordinary Django app, registers its extensions in ``ready()``, and
has a database-backed default behind a protocol that can be replaced.
"""
