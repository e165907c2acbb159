"""Generic services over a store: write, query, reconcile, verify, retention, policy, evidence, operations.

They depend only on :mod:`catalog.core`; artifact families plug in through
:mod:`catalog.ops.families`. Nothing here imports SQLAlchemy at package import.
"""
