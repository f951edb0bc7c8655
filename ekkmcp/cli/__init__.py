"""The ``ekkmcp`` command line: a thin adapter over the service, ``--json`` on every listing."""

from ekkmcp.cli.main import main

__all__ = ["main"]
