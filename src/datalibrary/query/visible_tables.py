"""The tables a caller may query, with the columns their grants show (the SQL console's
table browser and ``lake.tables()`` in the SDK)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.access import service as access
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.config import Settings
from datalibrary.lake.catalog import open_lake
from datalibrary.lake.models import Dataset
from datalibrary.lake.tables import file_schema


@dataclass(frozen=True)
class VisibleColumn:
    name: str
    type: str
    masked: bool
    label: str = ""  # the dataset's column label (from the SAS file or the study's define.xml)


@dataclass(frozen=True)
class VisibleTable:
    name: str
    columns: list[VisibleColumn]
    row_filtered: bool


def visible_tables(session: Session, principal: Principal, settings: Settings) -> list[VisibleTable]:
    require(principal, Permission.QUERY_RUN)
    lake = open_lake(settings)
    labels = {f"{d.namespace}.{d.name}": d.column_labels or {} for d in session.scalars(select(Dataset))}
    found: list[VisibleTable] = []
    for namespace in lake.namespaces():
        for name in lake.tables(namespace):
            grant = access.effective_access(session, principal, name.namespace, name.name)
            if grant is None:
                continue
            schema = file_schema(lake.load(name))
            table_labels = labels.get(str(name), {})
            columns = [
                VisibleColumn(
                    f.name, str(f.type), f.name.lower() in grant.masks, table_labels.get(f.name, "")
                )
                for f in schema
                if grant.columns is None or f.name.lower() in grant.columns
            ]
            found.append(VisibleTable(str(name), columns, grant.row_filter is not None))
    return found
