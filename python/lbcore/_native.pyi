"""Type stubs for the compiled module ``lbcore._native`` (checked by ``mypy.stubtest``)."""

__all__ = ["version"]

def version() -> str:
    """The version of the lbcore core this module was built from."""
