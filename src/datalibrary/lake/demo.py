"""The demo study of a first start, loaded through the real pipeline (land, policy, commit).

The synthetic generator (``datalibrary.demo_data``) is imported lazily: without it the demo
simply has no study.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from datalibrary.auth.permissions import Principal
from datalibrary.config import Settings
from datalibrary.db import Database
from datalibrary.lake.catalog import open_lake

NAMESPACE = "demo"
DEMO_SUBJECTS = 40
# Demo only: drops what looks identifying and keeps the rest. Real policies name every column.
DEMO_POLICY = """\
name: demo-study
version: 1
description: Demo only - drops direct identifiers by pattern and keeps every other column.
columns:
  "re:(?i).*(first|last|maiden|prefix|suffix)?_?name.*": drop
  "re:(?i).*(ssn|passport|drivers|license|mrn).*": drop
  "re:(?i).*(address|street|phone|email|zip|postal).*": drop
  "*": keep
"""


def table_name_for(path: Path) -> str:
    name = re.sub(r"[^a-z0-9_]", "_", path.name.split(".")[0].lower()).strip("_") or "data"
    return name if name[0].isalpha() else f"t_{name}"


def load_demo_study(settings: Settings, subjects: int = DEMO_SUBJECTS) -> Iterator[str]:
    """Generate a small study and ingest it into the ``demo`` namespace (once)."""
    try:
        from datalibrary.demo_data import generate_study  # type: ignore[import-not-found]
    except ImportError:
        yield "Demo study skipped: the synthetic data generator (datalibrary.demo_data) is not installed yet."
        return
    lake = open_lake(settings)
    if lake.tables(NAMESPACE):
        return
    from datalibrary.ingest.jobs import submit_file
    from datalibrary.ingest.worker import run_one, worker_name
    from datalibrary.privacy.store import save_policy

    operator = Principal.system("demo")
    db = Database(settings.connect_url())
    try:
        with db.session() as session:
            save_policy(session, operator, DEMO_POLICY)
        with tempfile.TemporaryDirectory() as scratch:
            files = [Path(f) for f in generate_study(Path(scratch), subjects=subjects)]
            loaded = []
            for path in files:
                table = f"{NAMESPACE}.{table_name_for(path)}"
                with db.session() as session:
                    job = submit_file(session, operator, settings, path, table=table, policy="demo-study")
                    job_id = job.id
                result = run_one(settings, db, worker_name("demo"), job_id)
                loaded.append(f"  {table:<24} {result[1] if result else 'not run'}")
        yield f"Demo study loaded into namespace '{NAMESPACE}' ({subjects} subjects):"
        yield from loaded
    finally:
        db.dispose()
