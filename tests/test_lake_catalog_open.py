"""Opening the Iceberg catalog on a fresh database from many processes at once.

pyiceberg creates its tables on first use (check, then create). Ingestion children and
workers open the catalog at the same moment on a new installation; before, the loser of
that race failed the whole job ("table iceberg_tables already exists")."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import create_engine, inspect

from datalibrary.config import Settings
from datalibrary.db.engine import normalize_url
from datalibrary.lake.catalog import Lake


def test_many_openers_of_a_fresh_catalog_all_succeed(database_url: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", database_url=database_url)
    openers = 8
    barrier = threading.Barrier(openers)
    errors: list[BaseException] = []
    lakes: list[Lake] = []

    def open_one() -> None:
        barrier.wait()
        try:
            lakes.append(Lake(settings))
        except BaseException as exc:  # noqa: BLE001 - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(openers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(lakes) == openers
    lakes[0].ensure_namespace("race")
    assert all("race" in lake.namespaces() for lake in lakes)
    for lake in lakes:
        lake.close()
    engine = create_engine(normalize_url(database_url))
    assert inspect(engine).has_table("iceberg_tables")
    engine.dispose()
