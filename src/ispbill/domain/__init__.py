"""Pure domain: money, calendar, ledger, lifecycle and policies.

Nothing in this package imports SQLAlchemy, HTTP libraries or reads the clock; a test in
tests/unit/test_layering.py keeps it so.
"""
