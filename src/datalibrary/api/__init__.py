"""REST API (FastAPI) under /api/v1; the app factory also mounts the web console."""

from datalibrary.api.app import create_app

__all__ = ["create_app"]
