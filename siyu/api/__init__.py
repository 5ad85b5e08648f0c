"""The HTTP API: FastAPI app factory and thin routers under /v1."""

from siyu.api.app import create_app

__all__ = ["create_app"]
