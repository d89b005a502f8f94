"""REST API (FastAPI) under /api/v1. ``api.app.install`` adds it to the app that
``datalibrary.app.create_app`` composes (with the web console)."""
