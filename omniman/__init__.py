"""Omniman: a headless omnichannel order hub for Django.

Session (mutable) --commit--> Order (immutable) --> Directive (async).
"""

__version__ = "0.1.0"
