"""The workflow tests use the API tests' client fixture."""

from ..api.conftest import api

__all__ = ["api"]
