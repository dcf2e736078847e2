"""lbcore: Python bindings for a sans-IO Layer-4 load-balancer core.

The compiled extension is :mod:`lbcore._native`; this package re-exports its public API so
that users write ``import lbcore``. The binding is thin: conversion only, no protocol logic.
"""

from lbcore._native import version

__all__ = ["version", "__version__"]

__version__: str = version()
