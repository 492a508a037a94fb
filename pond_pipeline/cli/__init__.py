"""The ``pond`` command line (click + rich)."""
