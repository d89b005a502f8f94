"""File collections beyond DICOM: HL7 aECG XML, VCF (restricted tier), PDF and text documents
(classified collections). Files are built in the test (tests/files_fixtures.py), hostile ones
included; the canary scan reads every byte the platform wrote."""

from __future__ import annotations

import gzip
import io
import json
from datetime import date, timedelta
from pathlib import Path

import pysam
import pytest
from pypdf import PdfReader

from datalibrary.access import service as access
from datalibrary.errors import InvalidInput
from datalibrary.files import aecg, dicom, formats, service
from datalibrary.files.freetext import StudyWords
from tests.files_fixtures import aecg as make_aecg
from tests.files_fixtures import (
    bgzip,
    odd_encoding_pdf,
    pdf,
    private_glyphs_pdf,
    scanned_pdf,
    vcf_text,
    zlib_bomb_pdf,
)
from tests.helpers import Platform
from tests.lake_helpers import SYSTEM, ingest, read_table
from tests.test_files_dicom import SUBJECTS, dm_csv, every_byte, who

SECRET = b"s" * 32
PROTOCOLS = "protocol documents, no patient data"


def context(tier: str = "standard", classification: str = "", offset: int = 17) -> formats.Context:
    def resolve(fields):  # type: ignore[no-untyped-def]
        if not fields.get("PatientID"):
            raise dicom.Rejected("PatientID is empty")
        return dicom.Subject("pseudo" + fields["PatientID"][-4:], offset)

    return formats.Context(
        resolve, SECRET, dicom.DeidOptions(resolve_subject=resolve, uid_secret=SECRET), tier, classification,
        StudyWords(SECRET, frozenset()),
    )  # fmt: skip


def rejected(path: str, data: bytes, ctx: formats.Context) -> str:
    with pytest.raises(dicom.Rejected) as caught:
        formats.deidentify(path, data, ctx)
    return caught.value.reason


# media types ----------------------------------------------------------------------------------


def test_formats_are_recognized_by_content_not_name() -> None:
    assert formats.sniff("x.bin", make_aecg()) == formats.AECG
    assert formats.sniff("x.txt", vcf_text()) == formats.VCF
    assert formats.sniff("x", bgzip(vcf_text())) == formats.VCF
    assert formats.sniff("x.dat", pdf(["hello"])) == formats.PDF
    assert formats.sniff("notes.txt", b"plain words") == formats.TEXT
    assert formats.sniff("fake.pdf", b"plain words") is None  # a name is not a format
    assert formats.sniff("x.gz", gzip.compress(b"not a vcf")) is None
    reason = rejected("fake.pdf", b"plain words", context(classification=PROTOCOLS))
    assert reason.startswith("unrecognized format: not DICOM, HL7 aECG XML, VCF, PDF or a UTF-8 text")


# aECG -----------------------------------------------------------------------------------------


def test_aecg_identifiers_dates_and_free_text() -> None:
    result = formats.deidentify(
        "ecg.xml", make_aecg(annotation="Reviewed by Dr. Bertram Canaryson"), context()
    )
    text = result.data.decode()
    for canary in (
        "01-701-1015",
        "Alice",
        "Canary",
        "19411212",
        "20140102",
        "SITE-CANARY-7",
        "555-867",
        "12 Canary",
    ):
        assert canary not in text, canary
    root = aecg.parse(result.data)
    ns = {"h": aecg.HL7}
    subject = root.find(".//h:trialSubject/h:id", ns)
    assert subject.get("extension") == "pseudo1015" and result.subject == "pseudo1015"
    assert root.find(".//h:birthTime", ns).get("nullFlavor") == "MSK"
    assert root.find(".//h:subjectDemographicPerson/h:name", ns).get("nullFlavor") == "MSK"
    # every time moved by the subject's offset (time of day kept), the protocol id kept
    shifted = (date(2014, 1, 2) + timedelta(17)).strftime("%Y%m%d")
    assert root.find("h:effectiveTime/h:low", ns).get("value") == f"{shifted}091000"
    assert root.find(".//h:head", ns).get("value") == f"{shifted}091000.000"
    assert root.find(".//h:clinicalTrial/h:id", ns).get("extension") == "CDISCPILOT01"
    assert "[NAME]" in root.find(".//h:annotation/h:value", ns).text
    assert result.metadata == {"acquisition_date": date(2014, 1, 19), "modality": "ECG"}
    assert result.details["leads"] == 3 and result.details["sampling_rate_hz"] == 500.0
    assert result.details["effective_time"] == f"{shifted}091000"
    assert result.actions["D"] >= 1 and result.actions["C"] >= 5 and result.actions["X"] >= 5
    # ids keyed per study: the same document gives the same ids, another study's key others
    again = formats.deidentify("ecg.xml", make_aecg(), context())
    assert aecg.parse(again.data).find("h:id", ns).get("root") == root.find("h:id", ns).get("root")
    other = context()
    other.uid_secret = b"t" * 32
    elsewhere = formats.deidentify("ecg.xml", make_aecg(), other)
    assert aecg.parse(elsewhere.data).find("h:id", ns).get("root") != root.find("h:id", ns).get("root")


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<AnnotatedECG xmlns="urn:hl7-org:v3"><text>&lol3;</text></AnnotatedECG>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<AnnotatedECG xmlns="urn:hl7-org:v3"><text>&xxe;</text></AnnotatedECG>"""


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (BOMB, "XML refused"),
        (XXE, "XML refused"),
        (b"<AnnotatedECG xmlns='urn:hl7-org:v3'>" + b"<x>" * 500, "nested deeper than"),
        (b"<AnnotatedECG xmlns='urn:hl7-org:v3'><text>cut", "not well-formed XML"),
        (b"<ClinicalDocument xmlns='urn:hl7-org:v3'/>", "not an HL7 v3 AnnotatedECG"),
        (b"<AnnotatedECG/>", "not an HL7 v3 AnnotatedECG"),
        (b"<AnnotatedECG xmlns='urn:hl7-org:v3'><id root='1.2'/></AnnotatedECG>", "no subject id"),
        (make_aecg(extra="<v:note xmlns:v='urn:vendor'>Alice</v:note>"), "outside the HL7 v3 namespace"),
        (make_aecg(leads=("I",)).replace(b"0 5 12 30", b"Alice Canary"), "digits hold something other"),
        (make_aecg(subject=""), "trialSubject/id has no extension"),
    ],
)
def test_hostile_or_unexpected_aecg_is_rejected(data: bytes, reason: str) -> None:
    assert reason in rejected("ecg.xml", data, context())


def test_aecg_partial_and_invalid_times_are_emptied() -> None:
    data = make_aecg().replace(b'<center value="20140102"/>', b'<center value="2014"/>')
    data = data.replace(b'<high value="20140102091010"/>', b'<high value="20141345"/>', 1)
    root = aecg.parse(formats.deidentify("ecg.xml", data, context()).data)
    ns = {"h": aecg.HL7}
    assert root.find(".//h:timepointEvent/h:effectiveTime/h:center", ns).get("nullFlavor") == "MSK"
    assert root.find("h:effectiveTime/h:high", ns).get("nullFlavor") == "MSK"


# VCF ------------------------------------------------------------------------------------------


def _read_vcf(data: bytes, tmp_path: Path, name: str = "x.vcf") -> pysam.VariantFile:
    path = tmp_path / name
    path.write_bytes(data)
    return pysam.VariantFile(str(path))


@pytest.mark.parametrize("compressed", [False, True])
def test_vcf_sample_pseudonymized_and_meta_lines_handled(tmp_path: Path, compressed: bool) -> None:
    source = vcf_text(variants=5)
    data = bgzip(source) if compressed else source
    result = formats.deidentify("a.vcf.gz" if compressed else "a.vcf", data, context("restricted"))
    text = gzip.decompress(result.data) if compressed else result.data
    for canary in (
        b"01-701-1015",
        b"Alice",
        b"Canary",
        b"20140102",
        b"1941",
        b"/home/",
        b"/data/",
        b"commandline",
    ):
        assert canary not in text, canary
    assert b"##fileDate=20140119" in text and b"##reference=GRCh38.fa" in text
    assert b"##SAMPLE=<ID=pseudo1015>" in text and b"##PEDIGREE=<Original=pseudo1015>" in text
    assert result.details == {
        "reference": "GRCh38.fa", "samples": 1, "variants": 5, "contigs": 2,
        "compression": "bgzip" if compressed else "none", "fileformat": "VCFv4.2",
    }  # fmt: skip
    assert result.subject == "pseudo1015" and result.metadata["acquisition_date"] == date(2014, 1, 19)
    if compressed:
        assert result.data.endswith(bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000"))
    reader = _read_vcf(result.data, tmp_path, "out.vcf.gz" if compressed else "out.vcf")
    assert list(reader.header.samples) == ["pseudo1015"]
    records = list(reader.fetch())
    assert [r.pos for r in records] == [10_000 + i * 137 for i in range(5)]
    assert records[0].samples["pseudo1015"]["GT"] == (0, 1)


def test_vcf_only_in_a_restricted_collection() -> None:
    assert "tier 'restricted'" in rejected("a.vcf", vcf_text(), context("standard"))


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: bgzip(vcf_text(variants=50))[:-28], "without its end-of-file block"),
        (lambda: bgzip(vcf_text(variants=50))[:-40], "truncated"),
        (lambda: gzip.compress(vcf_text())[:-12], "truncated gzip/BGZF data"),
        (lambda: vcf_text(samples=("01-701-1015", "01-701-1023")), "2 samples in one VCF"),
        (lambda: vcf_text(samples=()), "sites-only VCF"),
        (lambda: vcf_text().replace(b"rs1001", b"01-701-1015"), "data lines quote the sample id"),
        (lambda: vcf_text().replace(b"#CHROM\tPOS", b"#CHROM\tPOSITION"), "does not have the VCF columns"),
        (lambda: vcf_text().replace(b"\tPASS\tDP=21", b"\tPASS"), "htslib cannot read"),
        (lambda: b"##fileformat=VCFv4.2\n##x=\xff\xfe\n#CHROM\tPOS\n", "not UTF-8"),
    ],
)
def test_hostile_vcf_is_rejected(make, reason: str) -> None:  # type: ignore[no-untyped-def]
    assert reason in rejected("a.vcf.gz", make(), context("restricted"))


def test_a_gzip_bomb_stops_at_the_limit(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from datalibrary.files import vcf

    monkeypatch.setattr(vcf, "MAX_TEXT_BYTES", 1 << 20)
    bomb = gzip.compress(vcf_text() + b"#" * (8 << 20))  # 8 MiB of text in ~8 KiB
    assert len(bomb) < 64 << 10
    assert "decompresses to more than" in rejected("bomb.vcf.gz", bomb, context("restricted"))


# documents ------------------------------------------------------------------------------------


def test_documents_need_a_classified_collection() -> None:
    clean = pdf(["Protocol CDISCPILOT01, version 2", "Dosing: twice daily with food"])
    assert "this collection is not classified" in rejected("p.pdf", clean, context())
    assert "not classified" in rejected("readme.txt", b"Dosing: twice daily", context())
    result = formats.deidentify("p.pdf", clean, context(classification=PROTOCOLS))
    assert result.media_type == formats.PDF and result.subject is None
    assert result.details["pages"] == 1 and result.details["classification"] == PROTOCOLS
    assert "twice daily" in PdfReader(io.BytesIO(result.data)).pages[0].extract_text()


def test_a_pdf_with_a_patient_name_is_quarantined_even_when_classified() -> None:
    named = pdf(["Case report form", "Patient: John Smith", "Visit 3 notes"])
    reason = rejected("crf.pdf", named, context(classification=PROTOCOLS))
    assert "a person name" in reason and "John" not in reason and PROTOCOLS in reason


@pytest.mark.parametrize(
    ("lines", "kind"),
    [
        (["Subject born 1950-03-12"], "a date"),
        (["MRN: 12345678 follows"], "a medical record number"),
        (["Call 555-867-5309 for results"], "a phone number"),
    ],
)
def test_identifiers_in_documents_are_found(lines: list[str], kind: str) -> None:
    assert kind in rejected("d.pdf", pdf(lines), context(classification=PROTOCOLS))


def test_metadata_of_an_accepted_pdf_is_removed() -> None:
    data = pdf(["Dosing: twice daily"], author="Jane Canary", title="Draft of Jane Canary")
    assert b"Jane Canary" in data
    result = formats.deidentify("p.pdf", data, context(classification=PROTOCOLS))
    assert b"Jane Canary" not in result.data and PdfReader(io.BytesIO(result.data)).metadata is None


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: odd_encoding_pdf("Patient John Smith born 1950-03-12"), "odd text encoding"),
        (lambda: private_glyphs_pdf("Patient John Smith born 1950-03-12"), "outside the Adobe Glyph List"),
        (scanned_pdf, "image without text"),
        (lambda: pdf(["x"])[:200], "not a readable PDF"),
        (lambda: b"%PDF-1.7\n" + b"\x00" * 100, "not a readable PDF"),
        (lambda: pdf([]), "no extractable text"),
        (zlib_bomb_pdf, "no extractable text"),  # pypdf stops inflating at its limit
    ],
)
def test_documents_that_cannot_be_checked_are_quarantined(make, reason: str) -> None:  # type: ignore[no-untyped-def]
    assert reason in rejected("d.pdf", make(), context(classification=PROTOCOLS))


def test_encrypted_and_attachment_pdfs_are_quarantined() -> None:
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf(["Dosing: twice daily"]))))
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    assert "encrypted PDF" in rejected("e.pdf", out.getvalue(), context(classification=PROTOCOLS))
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf(["Dosing: twice daily"]))))
    writer.add_attachment("list.csv", b"USUBJID,NAME\n01-701-1015,Alice Canary\n")
    out = io.BytesIO()
    writer.write(out)
    assert "embedded files" in rejected("a.pdf", out.getvalue(), context(classification=PROTOCOLS))


def test_text_documents_are_scanned_too() -> None:
    ctx = context(classification=PROTOCOLS)
    assert formats.deidentify("notes.md", b"# Dosing\nTwice daily.\n", ctx).media_type == formats.TEXT
    assert "a date" in rejected("notes.txt", b"Seen on 12 March 2014", ctx)
    assert "not UTF-8" in rejected("notes.txt", b"\xff\xfe\x00bad", ctx)


# the platform: collections, grants, the restricted tier, the canary scan ----------------------


def test_collection_of_every_format_end_to_end(platform: Platform, tmp_path: Path) -> None:
    ingest(platform, dm_csv(tmp_path / "dm.csv"), "study1.dm", policy="sdtm")
    a, b = list(SUBJECTS)
    with platform.db.session() as session:
        service.create_collection(session, SYSTEM, platform.settings, "study1.ecg", policy="sdtm")
        service.create_collection(session, SYSTEM, platform.settings, "study1.docs", classification=PROTOCOLS)
        service.create_collection(session, SYSTEM, platform.settings, "study1.genomes", tier="restricted")
    uploads = {
        "study1.ecg": [
            ("a/ecg.xml", make_aecg(a, when=SUBJECTS[a])),
            ("b/ecg.xml", make_aecg(b, patient=("Bob", "Canary"), when=SUBJECTS[b])),
            ("b/bomb.xml", BOMB),
            ("b/genome.vcf", vcf_text((b,))),  # not a restricted collection
            ("protocol.pdf", pdf(["Dosing: twice daily"])),  # not classified
        ],
        "study1.docs": [
            ("protocol.pdf", pdf(["Protocol CDISCPILOT01", "Dosing: twice daily"], author="Jane Canary")),
            ("crf.pdf", pdf(["Case report form", "Patient: John Smith"])),
            ("readme.txt", b"Visit schedule: weeks 2, 4 and 8.\n"),
            ("blob.bin", b"\x00\x01 unknown"),
        ],
        "study1.genomes": [
            ("a.vcf.gz", bgzip(vcf_text((a,), file_date=SUBJECTS[a]))),
            ("b.vcf", vcf_text((b,), file_date=SUBJECTS[b])),
            ("cohort.vcf", vcf_text((a, b))),
        ],
    }
    reports = {}
    for name, items in uploads.items():
        with platform.db.session() as session:
            reports[name] = service.ingest_files(session, SYSTEM, platform.settings, name, items)
    with platform.db.session() as session:
        quarantine = {
            name: {q["path"]: q["reason"] for q in service.quarantined(session, SYSTEM, name)}
            for name in uploads
        }
    assert sorted(f["path"] for f in reports["study1.ecg"].added) == ["a/ecg.xml", "b/ecg.xml"]
    assert "XML refused" in quarantine["study1.ecg"]["b/bomb.xml"]
    assert "tier 'restricted'" in quarantine["study1.ecg"]["b/genome.vcf"]
    assert "not classified" in quarantine["study1.ecg"]["protocol.pdf"]
    assert sorted(f["path"] for f in reports["study1.docs"].added) == ["protocol.pdf", "readme.txt"]
    assert "a person name" in quarantine["study1.docs"]["crf.pdf"]
    assert quarantine["study1.docs"]["blob.bin"].startswith("unrecognized format")
    assert sorted(f["path"] for f in reports["study1.genomes"].added) == ["a.vcf.gz", "b.vcf"]
    assert "2 samples in one VCF" in quarantine["study1.genomes"]["cohort.vcf"]

    dm = {r["USUBJID"]: r for r in read_table(platform, "study1.dm").to_pylist()}
    ecg = {r["path"]: r for r in read_table(platform, "study1.ecg").to_pylist()}
    genomes = {r["path"]: r for r in read_table(platform, "study1.genomes").to_pylist()}
    for rows in (ecg, genomes):
        # the same pseudonym as the SDTM table's USUBJID, the date moved exactly like RFSTDTC
        assert {r["subject"] for r in rows.values()} == set(dm)
        for row in rows.values():
            assert row["acquisition_date"].isoformat() == dm[row["subject"]]["RFSTDTC"]
    assert {r["media_type"] for r in ecg.values()} == {formats.AECG}
    assert {r["modality"] for r in ecg.values()} == {"ECG"} and {r["tier"] for r in ecg.values()} == {
        "standard"
    }
    assert json.loads(ecg["a/ecg.xml"]["details"])["leads"] == 3
    assert {r["tier"] for r in genomes.values()} == {"restricted"}
    assert json.loads(genomes["a.vcf.gz"]["details"])["variants"] == 3
    docs = {r["path"]: r for r in read_table(platform, "study1.docs").to_pylist()}
    assert docs["protocol.pdf"]["media_type"] == "application/pdf" and docs["protocol.pdf"]["subject"] is None

    # canaries: no original identifier or date in any byte the platform wrote
    written = every_byte(platform)
    for canary in (
        *SUBJECTS, *SUBJECTS.values(), "19411212", "Alice", "Canary", "SITE-CANARY-7", "867-5309",
        "John Smith", "/home/canary", "alice_canary", "Jane", "1941-12-12",
        *(f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in SUBJECTS.values()),
    ):  # fmt: skip
        assert canary.encode() not in written, canary


def test_restricted_tier_needs_a_stewards_approval(platform: Platform) -> None:
    a = list(SUBJECTS)[0]
    platform.add_user("stew", "steward")
    steward = platform.as_user("stew")
    created = steward.post("/api/v1/collections", json={"name": "study1.wgs", "tier": "restricted"})
    assert created.status_code == 201, created.text
    assert created.json()["tier"] == "restricted"
    assert steward.post("/api/v1/collections", json={"name": "study1.x", "tier": "secret"}).status_code == 422
    sent = steward.post(
        "/api/v1/collections/study1.wgs/files", params={"filename": "a.vcf"}, content=vcf_text((a,))
    )
    assert sent.status_code == 200 and sent.json()["added"][0]["media_type"] == "text/vcf", sent.text
    with platform.db.session() as session:
        from sqlalchemy import select

        from datalibrary.lake.models import Dataset

        dataset = session.scalar(select(Dataset).where(Dataset.namespace == "study1", Dataset.name == "wgs"))
        assert dataset.sensitivity == "restricted" and "genomic" in dataset.tags
        stew = who(platform, "stew")
        whole = access.add_grant(session, stew, principal="user:ada", namespace="study1")
        whole_id = whole.id
    ada = platform.as_user("ada")
    # a grant on the whole namespace never reaches a restricted collection
    assert ada.get("/api/v1/collections/study1.wgs/files").status_code == 404
    assert ada.get("/api/v1/collections").json() == []
    refused = steward.post(
        "/api/v1/collections/study1.wgs/approvals", json={"grant_id": whole_id, "reason": "IRB 2026-17"}
    )
    assert refused.status_code == 409 and "names it" in refused.json()["detail"]
    with platform.db.session() as session:
        table_grant = access.add_grant(
            session, who(platform, "stew"), principal="user:ada", namespace="study1", table="wgs"
        )
        grant_id = table_grant.id
    assert ada.get("/api/v1/collections/study1.wgs/files").status_code == 404  # not approved yet
    assert (
        steward.post(
            "/api/v1/collections/study1.wgs/approvals", json={"grant_id": grant_id, "reason": " "}
        ).status_code
        == 422
    )
    assert (
        ada.post(
            "/api/v1/collections/study1.wgs/approvals", json={"grant_id": grant_id, "reason": "mine"}
        ).status_code
        == 403
    )
    approved = steward.post(
        "/api/v1/collections/study1.wgs/approvals", json={"grant_id": grant_id, "reason": "IRB 2026-17"}
    )
    assert approved.status_code == 200, approved.text
    listed = ada.get("/api/v1/collections/study1.wgs/files")
    assert listed.status_code == 200 and [f["path"] for f in listed.json()] == ["a.vcf"]
    got = ada.get("/api/v1/collections/study1.wgs/files/a.vcf")
    assert got.status_code == 200 and b"01-701-1015" not in got.content
    # revocation is live: the approval only qualifies a live grant
    with platform.db.session() as session:
        access.revoke_grant(session, who(platform, "stew"), grant_id)
    assert ada.get("/api/v1/collections/study1.wgs/files/a.vcf").status_code == 404
    with platform.db.session() as session:
        from datalibrary.audit.models import AuditEvent

        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "files.tier.approve")).all()
        assert [(e.actor, e.details["grant_id"], e.details["reason"]) for e in events] == [
            ("stew", grant_id, "IRB 2026-17")
        ]


def test_classification_is_a_stewards_audited_statement(sqlite_platform: Platform) -> None:
    platform = sqlite_platform
    platform.add_user("stew", "steward")
    steward = platform.as_user("stew")
    assert steward.post("/api/v1/collections", json={"name": "study1.docs"}).status_code == 201
    first = steward.post("/api/v1/collections/study1.docs/files", params={"filename": "p.pdf"},
                         content=pdf(["Dosing: twice daily"]))  # fmt: skip
    assert "not classified" in first.json()["quarantined"][0]["reason"]
    ada = platform.as_user("ada")
    assert (
        ada.put("/api/v1/collections/study1.docs/classification", json={"classification": "x"}).status_code
        == 403
    )
    set_ = steward.put("/api/v1/collections/study1.docs/classification", json={"classification": PROTOCOLS})
    assert set_.status_code == 200 and set_.json()["classification"] == PROTOCOLS
    again = steward.post("/api/v1/collections/study1.docs/files", params={"filename": "p.pdf"},
                         content=pdf(["Dosing: twice daily"]))  # fmt: skip
    assert [f["path"] for f in again.json()["added"]] == ["p.pdf"]
    with platform.db.session() as session:
        from sqlalchemy import select

        from datalibrary.audit.models import AuditEvent

        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "files.collection.classify")
        ).one()
        assert event.actor == "stew" and event.details == {"classification": PROTOCOLS, "via": "api"}
        with pytest.raises(InvalidInput):
            service.create_collection(
                session, SYSTEM, platform.settings, "study1.long", classification="x" * 501
            )


def test_cli_classification_tier_and_approval(sqlite_platform: Platform, tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from datalibrary.cli import app

    platform = sqlite_platform
    monkeypatch.setenv("DATALIBRARY_HOME", str(platform.settings.home))
    monkeypatch.setenv("DATALIBRARY_DATABASE_URL", platform.settings.connect_url())

    def run(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(app, list(args))
        assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.output}"
        return result.output

    created = json.loads(run("files", "create", "study1.docs", "--classification", PROTOCOLS, "--json"))
    assert created["classification"] == PROTOCOLS and created["tier"] == "standard"
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "protocol.pdf").write_bytes(pdf(["Dosing: twice daily"]))
    (tmp_path / "docs" / "crf.pdf").write_bytes(pdf(["Patient: John Smith"]))
    added = json.loads(run("files", "add", "study1.docs", str(tmp_path / "docs"), "--json"))
    assert [f["path"] for f in added["added"]] == ["protocol.pdf"]
    assert "a person name" in added["quarantined"][0]["reason"]
    cleared = json.loads(run("files", "classify", "study1.docs", "", "--json"))
    assert cleared["classification"] == ""
    genomes = json.loads(run("files", "create", "study1.wgs", "--tier", "restricted", "--json"))
    assert genomes["tier"] == "restricted"
    (tmp_path / "a.vcf").write_bytes(vcf_text((list(SUBJECTS)[0],)))
    assert json.loads(run("files", "add", "study1.wgs", str(tmp_path / "a.vcf"), "--json"))["added"]
    platform.add_user("stew", "steward")
    with platform.db.session() as session:
        grant = access.add_grant(
            session, who(platform, "stew"), principal="user:ada", namespace="study1", table="wgs"
        )
        grant_id = grant.id
    platform.as_user("ada")
    assert "no grant" in run("files", "list", "study1.wgs", "--as", "ada", code=2)
    approved = json.loads(
        run("files", "approve", "study1.wgs", str(grant_id), "--reason", "IRB 17", "--json")
    )
    assert approved["grant_id"] == grant_id and approved["reason"] == "IRB 17"
    listed = json.loads(run("files", "list", "study1.wgs", "--as", "ada", "--json"))
    assert [f["path"] for f in listed] == ["a.vcf"] and listed[0]["tier"] == "restricted"


def test_console_shows_formats_tier_and_classification(sqlite_platform: Platform) -> None:
    from tests.helpers import PASSWORD
    from tests.test_web import sign_in

    platform = sqlite_platform
    a = list(SUBJECTS)[0]
    with platform.db.session() as session:
        service.create_collection(session, SYSTEM, platform.settings, "study1.ecg", classification=PROTOCOLS)
    with platform.db.session() as session:
        service.ingest_files(
            session, SYSTEM, platform.settings, "study1.ecg",
            [("a/ecg.xml", make_aecg(a)), ("p.pdf", pdf(["Dosing: twice daily"])),
             ("crf.pdf", pdf(["Patient: John Smith"]))],
        )  # fmt: skip
    platform.add_user("sci", "scientist")
    platform.add_user("stew", "steward")
    with platform.db.session() as session:
        access.add_grant(
            session, who(platform, "stew"), principal="user:sci", namespace="study1", table="ecg"
        )
    client = sign_in(platform, "sci", PASSWORD)
    page = client.get("/collections", params={"name": "study1.ecg"}).text
    assert "a/ecg.xml" in page and "application/hl7-v3+xml" in page and "p.pdf" in page
    assert PROTOCOLS in page and "Alice" not in page
    admin = sign_in(platform, "admin", platform.admin_password)
    assert "a person name" in admin.get("/collections", params={"name": "study1.ecg"}).text


def test_old_index_tables_gain_the_new_columns(sqlite_platform: Platform) -> None:
    """A collection created before ``tier`` and ``details`` existed gets them on its next
    ingestion (schema evolution); its older rows read as NULL."""
    from pyiceberg.schema import Schema

    from datalibrary.lake.catalog import open_lake, parse_table_name

    platform = sqlite_platform
    with platform.db.session() as session:
        service.create_collection(session, SYSTEM, platform.settings, "study1.old")
    lake = open_lake(platform.settings)
    table = lake.load(parse_table_name("study1.old"))
    with table.update_schema() as update:
        update.delete_column("details")
        update.delete_column("tier")
    assert "tier" not in Schema(*table.schema().fields).column_names
    with platform.db.session() as session:
        service.ingest_files(session, SYSTEM, platform.settings, "study1.old", [("e.xml", make_aecg())])
    rows = read_table(platform, "study1.old").to_pylist()
    assert rows[0]["tier"] == "standard" and json.loads(rows[0]["details"])["leads"] == 3


def test_aecg_names_in_attributes_and_dates_in_unexpected_places() -> None:
    extra = (
        '<component><series><code code="X" displayName="Tracing of Alice Canary, Dr. Ann Smith"/>'
        '<value xsi:type="PQ" value="20140102" unit="d"/></series></component>'
    )
    result = formats.deidentify("ecg.xml", make_aecg(extra=extra), context())
    text = result.data.decode()
    assert "Alice" not in text and "Ann Smith" not in text and "20140102" not in text
    assert 'value="20140119"' in text


def test_erasing_a_subject_removes_their_ecgs_and_genomes(platform: Platform) -> None:
    from datalibrary.lake.catalog import open_lake, parse_table_name
    from datalibrary.lake.erasure import erase_subject

    a, b = list(SUBJECTS)
    with platform.db.session() as session:
        service.create_collection(session, SYSTEM, platform.settings, "study1.ecg")
        service.create_collection(session, SYSTEM, platform.settings, "study1.wgs", tier="restricted")
    with platform.db.session() as session:
        service.ingest_files(
            session,
            SYSTEM,
            platform.settings,
            "study1.ecg",
            [("a.xml", make_aecg(a)), ("b.xml", make_aecg(b))],
        )
        service.ingest_files(
            session, SYSTEM, platform.settings, "study1.wgs",
            [("a.vcf.gz", bgzip(vcf_text((a,)))), ("b.vcf", vcf_text((b,)))],
        )  # fmt: skip
    gone = {r["path"]: r for r in read_table(platform, "study1.ecg").to_pylist()}["a.xml"]["subject"]
    lake = open_lake(platform.settings)
    with platform.db.session() as session:
        report = erase_subject(session, SYSTEM, lake, namespace="study1", subject=gone)
    assert report["ok"] is True, report["files_containing_subject"]
    assert [r["path"] for r in read_table(platform, "study1.ecg").to_pylist()] == ["b.xml"]
    assert [r["path"] for r in read_table(platform, "study1.wgs").to_pylist()] == ["b.vcf"]
    for name in ("study1.ecg", "study1.wgs"):
        remaining = lake.storage.list(service.objects_root(lake, parse_table_name(name)))
        assert len(remaining) == 1
        data = lake.storage.read_bytes(remaining[0].uri)
        assert gone.encode() not in (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)


def test_sdk_reads_ecgs_and_approved_genomes(sqlite_platform: Platform, tmp_path: Path) -> None:
    import datalibrary.sdk as sdk
    from tests.helpers import LiveServer

    platform = sqlite_platform
    a = list(SUBJECTS)[0]
    with platform.db.session() as session:
        service.create_collection(session, SYSTEM, platform.settings, "study1.ecg")
        service.create_collection(session, SYSTEM, platform.settings, "study1.wgs", tier="restricted")
    with platform.db.session() as session:
        service.ingest_files(session, SYSTEM, platform.settings, "study1.ecg", [("a.xml", make_aecg(a))])
        service.ingest_files(
            session, SYSTEM, platform.settings, "study1.wgs", [("a.vcf.gz", bgzip(vcf_text((a,))))]
        )
    platform.add_user("stew", "steward")
    with platform.db.session() as session:
        access.add_grant(session, who(platform, "stew"), principal="user:ada", namespace="study1")
    platform.as_user("ada")
    with LiveServer(platform.app) as server:
        lake = sdk.connect(server.url, platform.tokens["ada"])
        assert [c["name"] for c in lake.collections()] == ["study1.ecg"]  # the genomes need an approval
        ecg = lake.files("study1.ecg")
        assert aecg.parse(ecg.read("a.xml")).tag == f"{{{aecg.HL7}}}AnnotatedECG"
        with pytest.raises(sdk.SdkError) as refused:
            lake.files("study1.wgs").read("a.vcf.gz")
        assert refused.value.status == 404
        with platform.db.session() as session:
            table_grant = access.add_grant(
                session, who(platform, "stew"), principal="user:ada", namespace="study1", table="wgs"
            )
            service.approve_grant(session, who(platform, "stew"), "study1.wgs", table_grant.id, "IRB 17")
        saved = lake.files("study1.wgs").download("a.vcf.gz", tmp_path)
        reader = pysam.VariantFile(str(saved))
        assert list(reader.header.samples) == [lake.files("study1.wgs").list()[0]["subject"]]
