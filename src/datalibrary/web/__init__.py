"""Web console: server-rendered pages (Jinja2) and static assets; no front-end build step."""
