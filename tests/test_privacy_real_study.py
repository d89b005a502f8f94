"""A whole SDTM study through the built-in ``sdtm`` policy: every domain ingests, none refused.

Runs on the public CDISC pilot study (18 datasets) when the shared data is there, and always
on a generated study with the same datasets and variables, so a clone without it still runs.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyreadstat
import pytest

from tests.conftest import SHARED_DATA
from tests.helpers import Platform
from tests.lake_helpers import ingest, read_table

# the pilot study's datasets and variables, in file order
PILOT = {
    "ae": "STUDYID DOMAIN USUBJID AESEQ AESPID AETERM AELLT AELLTCD AEDECOD AEPTCD AEHLT AEHLTCD AEHLGT "
    "AEHLGTCD AEBODSYS AEBDSYCD AESOC AESOCCD AESEV AESER AEACN AEREL AEOUT AESCAN AESCONG AESDISAB AESDTH "
    "AESHOSP AESLIFE AESOD AEDTC AESTDTC AEENDTC AESTDY AEENDY",
    "cm": "STUDYID DOMAIN USUBJID CMSEQ CMSPID CMTRT CMDECOD CMINDC CMCLAS CMDOSE CMDOSU CMDOSFRQ CMROUTE "
    "VISITNUM VISIT VISITDY CMDTC CMSTDTC CMENDTC CMSTDY CMENDY",
    "dm": "STUDYID DOMAIN USUBJID SUBJID RFSTDTC RFENDTC RFXSTDTC RFXENDTC RFICDTC RFPENDTC DTHDTC DTHFL "
    "SITEID AGE AGEU SEX RACE ETHNIC ARMCD ARM ACTARMCD ACTARM COUNTRY DMDTC DMDY",
    "ds": "STUDYID DOMAIN USUBJID DSSEQ DSSPID DSTERM DSDECOD DSCAT VISITNUM VISIT DSDTC DSSTDTC DSSTDY",
    "ex": "STUDYID DOMAIN USUBJID EXSEQ EXTRT EXDOSE EXDOSU EXDOSFRM EXDOSFRQ EXROUTE VISITNUM VISIT "
    "VISITDY EXSTDTC EXENDTC EXSTDY EXENDY",
    "mh": "STUDYID DOMAIN USUBJID MHSEQ MHSPID MHTERM MHLLT MHDECOD MHHLT MHHLGT MHCAT MHBODSYS MHSEV "
    "VISITNUM VISIT VISITDY MHDTC MHSTDTC MHDY",
    "relrec": "STUDYID RDOMAIN USUBJID IDVAR IDVARVAL RELTYPE RELID",
    "sc": "STUDYID DOMAIN USUBJID SCSEQ SCTESTCD SCTEST SCCAT SCORRES SCORRESU SCSTRESC SCSTRESN SCSTRESU "
    "SCDTC SCDY",
    "se": "STUDYID DOMAIN USUBJID SESEQ ETCD ELEMENT SESTDTC SEENDTC SEUPDES",
    "suppae": "STUDYID RDOMAIN USUBJID IDVAR IDVARVAL QNAM QLABEL QVAL QORIG QEVAL",
    "suppdm": "STUDYID RDOMAIN USUBJID IDVAR IDVARVAL QNAM QLABEL QVAL QORIG QEVAL",
    "suppds": "STUDYID RDOMAIN USUBJID IDVAR IDVARVAL QNAM QLABEL QVAL QORIG QEVAL",
    "sv": "STUDYID DOMAIN USUBJID VISITNUM VISIT VISITDY SVSTDTC SVENDTC",
    "ta": "STUDYID DOMAIN ARMCD ARM TAETORD ETCD ELEMENT TABRANCH TATRANS EPOCH",
    "te": "STUDYID DOMAIN ETCD ELEMENT TESTRL TEENRL TEDUR",
    "ti": "STUDYID DOMAIN IETESTCD IETEST IECAT TIRL",
    "ts": "STUDYID DOMAIN TSSEQ TSGRPID TSPARMCD TSPARM TSVAL TSVALNF TSVALCD TSVCDREF TSVCDVER",
    "tv": "STUDYID DOMAIN VISITNUM VISIT VISITDY ARMCD ARM TVSTRL TVENRL",
}
NUMERIC = ("SEQ", "DY", "NUM", "AGE", "DOSE", "STRESN", "TAETORD", "CD")
ROWS = 6


def _value(column: str, row: int, domain: str) -> object:
    subject = f"01-701-{1015 + row % 3}"
    if column == "USUBJID":
        return subject
    if column in ("IDVAR",):
        return "AESEQ" if domain != "suppdm" else ""
    if column == "IDVARVAL":
        return str(row + 1) if domain != "suppdm" else ""
    if column == "QNAM":
        return ["COMPLT16", "ITT", "AETRTEM"][row % 3]
    if column == "RELID":
        return subject
    if column.endswith("DTC"):
        return ["2014-01-03", "2014-01-03T10:30", "2014-02", "2014", "2014-01-03/2014-01-09", ""][row % 6]
    if column.endswith(NUMERIC) and column not in ("ETCD", "ARMCD", "ACTARMCD", "TSPARMCD", "IETESTCD"):
        return float(row + 1)
    if column in ("DOMAIN", "RDOMAIN"):
        return domain.removeprefix("supp")[:2].upper()
    return f"{column[-4:]} VALUE {row % 2}"


def generated_study(directory: Path) -> dict[str, Path]:
    paths = {}
    for domain, columns in PILOT.items():
        frame = pd.DataFrame({c: [_value(c, r, domain) for r in range(ROWS)] for c in columns.split()})
        paths[domain] = directory / f"{domain}.xpt"
        pyreadstat.write_xport(frame, str(paths[domain]), table_name=domain.upper()[:8])
    return paths


def _ingest_all(platform: Platform, paths: dict[str, Path], namespace: str) -> dict[str, str]:
    return {
        domain: ingest(platform, path, f"{namespace}.{domain}", policy="sdtm")[1]
        for domain, path in paths.items()
    }


def test_generated_study_every_domain_ingests(platform: Platform, tmp_path: Path) -> None:
    states = _ingest_all(platform, generated_study(tmp_path), "gen")
    assert states == dict.fromkeys(PILOT, "succeeded")
    relrec = read_table(platform, "gen.relrec")
    assert not any(v.startswith("01-701-") for v in relrec.column("RELID").to_pylist())


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="shared test data not present")
def test_pilot_study_every_domain_ingests(platform: Platform) -> None:
    folder = SHARED_DATA / "cdiscpilot01-sdtm"
    paths = {p.stem: p for p in sorted(folder.glob("*.xpt"))}
    assert set(paths) == set(PILOT), "the generated equivalent mirrors the pilot's datasets"
    states = _ingest_all(platform, paths, "pilot")
    assert states == dict.fromkeys(PILOT, "succeeded")
    relrec = read_table(platform, "pilot.relrec")
    raw = set(pd.read_sas(folder / "relrec.xpt", format="xport", encoding="latin-1")["USUBJID"])
    assert not raw & set(relrec.column("RELID").to_pylist()), "RELID holds no original USUBJID"
