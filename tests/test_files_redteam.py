"""Red-team attacks on file collections: identifiers hidden where a handler may not look.

Each attack hides a canary (the original identifier) somewhere in a file; the file must come
out without the canary in any encoding (UTF-8, UTF-16, Latin-1, any case), or be quarantined
with a reason. Hostile input never crashes the request nor half-commits."""

from __future__ import annotations

import io
import re

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from datalibrary.files import dicom, formats, service
from tests.files_fixtures import aecg as make_aecg
from tests.files_fixtures import pdf, vcf_text
from tests.helpers import Platform
from tests.lake_helpers import SYSTEM
from tests.test_files_dicom import sample, to_bytes
from tests.test_files_formats import PROTOCOLS, context

SUBJECT = "01-701-1015"


def leaked(canary: str, data: bytes) -> bool:
    """The canary in ``data`` in any case, in UTF-8 / Latin-1 / UTF-16, with or without spaces."""
    forms = {canary, canary.replace(" ", ""), canary.replace(" ", "^")}
    low = data.lower()
    for form in forms:
        for encoding in ("utf-8", "latin-1", "utf-16-le", "utf-16-be"):
            try:
                needle = form.lower().encode(encoding)
            except UnicodeEncodeError:
                continue
            if needle in low:
                return True
    return False


def outcome(path: str, data: bytes, ctx: formats.Context) -> bytes | str:
    """The stored bytes, or the quarantine reason."""
    try:
        result = formats.deidentify(path, data, ctx)
    except dicom.Rejected as exc:
        assert exc.reason.strip()
        return exc.reason
    return result.data if isinstance(result.data, bytes) else result.data.read_bytes()


def assert_safe(path: str, data: bytes, ctx: formats.Context, *canaries: str) -> None:
    found = outcome(path, data, ctx)
    if isinstance(found, str):  # quarantined with a reason that quotes no canary
        for canary in canaries:
            assert canary.lower() not in found.lower(), canary
        return
    if found.startswith(b"%PDF"):  # compressed streams too
        from pypdf import PdfReader
        from pypdf.generic import StreamObject

        reader = PdfReader(io.BytesIO(found))
        for number in range(1, int(reader.trailer["/Size"])):
            try:
                obj = reader.get_object(number)
            except Exception:  # noqa: BLE001 - numbers beyond the file's
                continue
            if isinstance(obj, StreamObject):
                found += obj.get_data()
    for canary in canaries:
        assert not leaked(canary, found), f"{canary!r} written in {path}"


# DICOM ----------------------------------------------------------------------------------------


def _dicom(**changes: object) -> Dataset:
    ds = sample()
    ds.PatientID, ds.PatientName = SUBJECT, "Qarbanian^Zyxwolf"
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    return ds


def test_dicom_preamble_polyglot_is_not_written() -> None:
    """A preamble is 128 free bytes: a polyglot hides a PDF header and a name in it."""
    ds = _dicom()
    ds.preamble = b"%PDF-1.4 Qarbanian Zyxwolf MRN 88123401".ljust(128, b" ")
    data = to_bytes(ds)
    assert data[128:132] == b"DICM"
    assert_safe("x.dcm", data, context(), "Qarbanian", "88123401")


def test_dicom_unknown_public_tag_with_explicit_vr_is_removed() -> None:
    ds = _dicom()
    ds.add_new(0x00101234, "LO", "Qarbanian Zyxwolf")  # not in the dictionary, not UN
    ds.add_new(0x00291000, "LO", "x")  # private, for contrast: removed
    assert_safe("x.dcm", to_bytes(ds), context(), "Qarbanian")


def test_dicom_person_names_outside_table_e11_are_not_kept() -> None:
    """Every PN attribute of the dictionary names a person: none passes unchanged."""
    from pydicom.datadict import DicomDictionary

    profile = dicom.load_profile()
    missing = [
        tag for tag, entry in DicomDictionary.items()
        if entry[0] == "PN" and profile.action(tag) is None and "x" not in f"{tag:08x}"
    ]  # fmt: skip
    ds = _dicom()
    for tag in missing:
        ds.add_new(tag, "PN", "Qarbanian^Zyxwolf")
    assert_safe("x.dcm", to_bytes(ds), context(), "Qarbanian")


def test_dicom_identifiers_deep_in_sequences() -> None:
    inner = Dataset()
    inner.PatientName = "Qarbanian^Zyxwolf"
    inner.OtherPatientIDs = "88123401"
    middle = Dataset()
    middle.ReferencedPatientSequence = Sequence([inner])
    outer = Dataset()
    outer.add_new(0x00081199, "SQ", Sequence([middle]))  # ReferencedSOPSequence: U* in the table
    ds = _dicom(
        ImageComments="for Zyxwolf Qarbanian",
        OtherPatientIDsSequence=Sequence([inner]),
        RequestAttributesSequence=Sequence([middle]),
    )
    ds.add_new(0x00081115, "SQ", Sequence([middle]))  # ReferencedSeriesSequence
    ds.add_new(0x00400275, "SQ", Sequence([outer]))
    assert_safe("x.dcm", to_bytes(ds), context(), "Qarbanian", "88123401")


def test_dicom_unicode_name_and_file_meta_version_name() -> None:
    ds = _dicom(PatientName="Qärbänian^Zyxwölf", SpecificCharacterSet="ISO_IR 192")
    ds.file_meta.ImplementationVersionName = "QARBANIAN"
    assert_safe("x.dcm", to_bytes(ds), context(), "Qärbänian", "QARBANIAN")


def test_dicom_uid_under_the_standard_root_is_not_a_hiding_place() -> None:
    """``keyed_uid`` keeps UIDs of the standard (1.2.840.10008.*): an MRN dressed as one must not pass."""
    ds = _dicom()
    ds.StudyInstanceUID = "1.2.840.10008.88123401"
    ds.SOPInstanceUID = "1.2.840.10008.88123401.1"
    assert_safe("x.dcm", to_bytes(ds), context(), "88123401")
    assert dicom.keyed_uid(b"k", "1.2.840.10008.1.2.1") == "1.2.840.10008.1.2.1"  # a transfer syntax stays


def test_dicom_trailing_padding_is_not_written() -> None:
    ds = _dicom()
    data = to_bytes(ds)
    padding = b"Qarbanian Zyxwolf 88123401".ljust(32, b" ")
    data += b"\xfc\xff\xfc\xff" + b"OB\x00\x00" + len(padding).to_bytes(4, "little") + padding
    assert_safe("x.dcm", data, context(), "Qarbanian", "88123401")


# aECG -----------------------------------------------------------------------------------------


def _aecg(extra: str) -> bytes:
    return make_aecg(SUBJECT, patient=("Zyxwolf", "Qarbanian"), extra=extra)


@pytest.mark.parametrize(
    "extra",
    [
        '<code code="QARBANIAN" codeSystem="2.16.1"/>',  # a code attribute quoting the name
        '<code code="X" codeSystem="2.16.1" unit="Qarbanian"/>',
        '<value xsi:type="Qarbanian" value="1"/>',  # xsi:type is not free text
        '<templateId root="2.16.1" extension="88123401"/><id extension="88123401"/>',
        '<setId root="2.16.1" extension="Qarbanian"/>',
        '<id root="1.2.840.10008.88123401"/><id extension="88123401"/>',  # standard root kept
        "<Qarbanian/>",  # an element named after the patient
        '<code Qarbanian="1"/>',  # an attribute named after the patient
        '<id root="2.16.1" extension="x">Zyxwolf Qarbanian<text>Qarbanian</text></id>',  # content of an id
        '<templateId root="2.16.1">Mr. Qarbanian</templateId>',
        "<text><![CDATA[Zyxwolf Qarbanian]]></text>",
        "<text>ZYXWOLF QARBANIAN</text><?pi Qarbanian?><!-- Qarbanian -->",
        '<annotation><annotation><value xsi:type="ST">seen with qarbanian</value></annotation></annotation>',
        f'<code code="X" displayName="subject {SUBJECT.lower()}"/>',
    ],
)
def test_aecg_hiding_places(extra: str) -> None:
    data = _aecg(extra)
    assert_safe("ecg.xml", data, context(), "Qarbanian", "88123401", SUBJECT)


def test_aecg_utf16_document() -> None:
    data = _aecg("<text>Zyxwolf Qarbanian</text>").decode().replace('encoding="UTF-8"', 'encoding="UTF-16"')
    assert_safe("ecg.xml", data.encode("utf-16"), context(), "Qarbanian", SUBJECT)


# VCF ------------------------------------------------------------------------------------------


def _vcf(extra_meta: str = "", sample_id: str = SUBJECT) -> bytes:
    return vcf_text((sample_id,), extra_meta=extra_meta)


@pytest.mark.parametrize(
    "extra_meta",
    [
        f"##contig=<ID=chr3,length=100,species={SUBJECT}>",  # a field other than Description
        f'##INFO=<ID=XX,Number=1,Type=String,Description="x",Note="{SUBJECT}">',
        f"##reference={SUBJECT}.fa",
        f"##phasing={SUBJECT}",
        f"##fileformat=VCFv4.2 {SUBJECT}",
        f'##ALT=<ID=DEL,Description="d",Origin={SUBJECT.lower()}>',
        f"##META=<ID=Assay,Type=String,Number=.,Values=[{SUBJECT}]>",
    ],
)
def test_vcf_sample_id_in_header_fields(extra_meta: str) -> None:
    assert_safe("x.vcf", _vcf(extra_meta), context(tier="restricted"), SUBJECT)


def test_vcf_sample_id_in_data_lines_any_case() -> None:
    data = _vcf().replace(b"rs1000", SUBJECT.lower().encode())
    assert_safe("x.vcf", data, context(tier="restricted"), SUBJECT)
    data = _vcf().replace(b"DP=20", b"DP=20;WHO=" + SUBJECT.encode())
    assert_safe("x.vcf", data, context(tier="restricted"), SUBJECT)


def test_vcf_header_after_data_and_a_second_chrom_line() -> None:
    text = _vcf()
    late = text + b"##individual=Zyxwolf Qarbanian\n"
    assert_safe("x.vcf", late, context(tier="restricted"), "Qarbanian", SUBJECT)
    second = (
        text
        + (
            "\t".join(
                ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", "02-701-9999"]
            )
            + "\n"
        ).encode()
    )
    assert_safe("x.vcf", second, context(tier="restricted"), "02-701-9999", SUBJECT)


def test_vcf_crlf_and_disguised_second_sample() -> None:
    crlf = _vcf().replace(b"\n", b"\r\n")
    assert_safe("x.vcf", crlf, context(tier="restricted"), SUBJECT)
    lines = _vcf().split(b"\n")
    extra = [line + b"\t1/1:99" if line and not line.startswith(b"#") else line for line in lines]
    found = outcome("x.vcf", b"\n".join(extra), context(tier="restricted"))
    assert isinstance(found, str), "data lines with a second, undeclared sample column passed"


@pytest.mark.parametrize("sample_id", [f"{SUBJECT} ", f"{SUBJECT}\x0b", "01-701-1015;x"])
def test_vcf_odd_sample_names(sample_id: str) -> None:
    assert_safe("x.vcf", _vcf(sample_id=sample_id), context(tier="restricted"), SUBJECT)


# PDF and text ---------------------------------------------------------------------------------


def _pdf_with(mutate) -> bytes:  # type: ignore[no-untyped-def]
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(
        clone_from=PdfReader(io.BytesIO(pdf(["Protocol CDISCPILOT01", "Dosing: twice daily"])))
    )
    mutate(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _annotation(writer, **entries) -> None:  # type: ignore[no-untyped-def]
    from pypdf.generic import ArrayObject, DictionaryObject, NameObject, NumberObject, TextStringObject

    annotation = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Annot"),
            NameObject("/Subtype"): NameObject(entries.pop("subtype", "/Text")),
            NameObject("/Rect"): ArrayObject([NumberObject(0)] * 4),
            **{
                NameObject(f"/{k}"): v if not isinstance(v, str) else TextStringObject(v)
                for k, v in entries.items()
            },
        }
    )
    page = writer.pages[0]
    page[NameObject("/Annots")] = ArrayObject([writer._add_object(annotation)])


def _catalog(key: str, value) -> object:  # type: ignore[no-untyped-def]
    from pypdf.generic import NameObject, TextStringObject

    def mutate(writer) -> None:  # type: ignore[no-untyped-def]
        writer._root_object[NameObject(key)] = TextStringObject(value) if isinstance(value, str) else value

    return mutate


def _appearance(writer) -> None:  # type: ignore[no-untyped-def]
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    stream = DecodedStreamObject()
    stream.set_data(b"BT /Helv 12 Tf 0 0 Td (Patient: Mr. Zyxwolf Qarbanian) Tj ET")
    stream[NameObject("/Type")] = NameObject("/XObject")
    stream[NameObject("/Subtype")] = NameObject("/Form")
    _annotation(
        writer, subtype="/FreeText", AP=DictionaryObject({NameObject("/N"): writer._add_object(stream)})
    )


def _page_metadata(writer) -> None:  # type: ignore[no-untyped-def]
    from pypdf.generic import DecodedStreamObject, NameObject

    stream = DecodedStreamObject()
    stream.set_data(b"<x:xmpmeta><dc:creator>Patient Mr. Zyxwolf Qarbanian</dc:creator></x:xmpmeta>")
    writer.pages[0][NameObject("/Metadata")] = writer._add_object(stream)


def _link(writer) -> None:  # type: ignore[no-untyped-def]
    from pypdf.generic import DictionaryObject, NameObject, TextStringObject

    action = DictionaryObject(
        {
            NameObject("/S"): NameObject("/URI"),
            NameObject("/URI"): TextStringObject("https://x/p?name=Mr. Zyxwolf Qarbanian"),
        }
    )
    _annotation(writer, subtype="/Link", A=action)


def _field_default(writer) -> None:  # type: ignore[no-untyped-def]
    from pypdf.generic import ArrayObject, DictionaryObject, NameObject, TextStringObject

    field = DictionaryObject(
        {
            NameObject("/FT"): NameObject("/Tx"),
            NameObject("/T"): TextStringObject("Mr. Zyxwolf Qarbanian"),
            NameObject("/TU"): TextStringObject("Mr. Zyxwolf Qarbanian"),
            NameObject("/DV"): TextStringObject("Mr. Zyxwolf Qarbanian"),
        }
    )
    writer._root_object[NameObject("/AcroForm")] = DictionaryObject(
        {NameObject("/Fields"): ArrayObject([writer._add_object(field)])}
    )


@pytest.mark.parametrize(
    "mutate",
    [
        lambda w: _annotation(w, Subj="Patient Mr. Zyxwolf Qarbanian"),
        lambda w: _annotation(w, NM="Mr. Zyxwolf Qarbanian"),
        _appearance,
        _page_metadata,
        _link,
        _field_default,
        _catalog("/PatientName", "Mr. Zyxwolf Qarbanian"),
        _catalog("/Lang", "Mr. Zyxwolf Qarbanian"),
    ],
)
def test_pdf_hiding_places(mutate) -> None:  # type: ignore[no-untyped-def]
    assert_safe("doc.pdf", _pdf_with(mutate), context(classification=PROTOCOLS), "Qarbanian")


def test_pdf_incremental_update_keeps_no_old_text() -> None:
    """The first revision says the name; an incremental update replaces the page's content."""
    original = pdf(["Patient: Mr. Zyxwolf Qarbanian"])
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, NameObject

    writer = PdfWriter(io.BytesIO(original), incremental=True)
    content = DecodedStreamObject()
    content.set_data(b"BT /F1 12 Tf 72 700 Td (Dosing: twice daily) Tj ET")
    writer.pages[0][NameObject("/Contents")] = writer._add_object(content)
    out = io.BytesIO()
    writer.write(out)
    data = out.getvalue()
    assert data.startswith(original) and len(data) > len(original)  # the old revision is still in it
    assert_safe("doc.pdf", data, context(classification=PROTOCOLS), "Qarbanian")


def test_pdf_text_split_across_objects_and_second_stream() -> None:
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import ArrayObject, DecodedStreamObject, NameObject

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf(["Protocol CDISCPILOT01"]))))
    page = writer.pages[0]
    first = page["/Contents"]
    second = DecodedStreamObject()
    second.set_data(b"BT /F1 12 Tf 72 600 Td (Patient: Mr. Zyx) Tj (wolf Qarb) Tj (anian) Tj ET")
    page[NameObject("/Contents")] = ArrayObject([first, writer._add_object(second)])
    out = io.BytesIO()
    writer.write(out)
    assert_safe("doc.pdf", out.getvalue(), context(classification=PROTOCOLS), "Qarbanian", "Zyxwolf")


@pytest.mark.parametrize(
    "text",
    [
        "Patient: Mr. J\u200bohn Sm\u200bith, seen 2014-01-02",  # zero-width spaces inside
        "Patient: Mr. Ｊｏｈｎ Ｓｍｉｔｈ",  # full-width letters
        "Seen on 2\u00ad014-01-02 by Mr. Smith",  # a soft hyphen in a date
    ],
)
def test_text_document_with_invisible_characters(text: str) -> None:
    found = outcome("notes.txt", text.encode(), context(classification=PROTOCOLS))
    assert isinstance(found, str), "an identifier hidden by invisible or full-width characters passed"


# the platform: hostile input never 500s nor half-commits -------------------------------------


def test_hostile_files_end_to_end(platform: Platform) -> None:
    from tests.test_files_dicom import every_byte

    ds = _dicom()
    ds.preamble = b"%PDF-1.4 Qarbanian".ljust(128, b" ")
    with platform.db.session() as session:
        service.create_collection(session, SYSTEM, platform.settings, "s.ecg")
        service.create_collection(session, SYSTEM, platform.settings, "s.gen", tier="restricted")
    items = {
        "s.ecg": [
            ("a.dcm", to_bytes(ds)),
            ("b.xml", _aecg('<code code="QARBANIAN"/>')),
            ("c.xml", b"<AnnotatedECG xmlns='urn:hl7-org:v3'>" * 5000),
            ("d.xml", b"\xff\xfe<\x00"),
            ("e.dcm", b"\x00" * 128 + b"DICM" + b"\xff" * 50),
        ],
        "s.gen": [
            ("a.vcf", _vcf(f"##phasing={SUBJECT}")),
            ("b.vcf.gz", b"\x1f\x8b\x08\x04" + b"\x00" * 20),
            ("c.vcf", b"##fileformat=VCFv4.2\n#CHROM\tPOS\n"),
        ],
    }
    for name, files in items.items():
        with platform.db.session() as session:
            service.ingest_files(session, SYSTEM, platform.settings, name, files)
    written = every_byte(platform)
    for canary in ("Qarbanian", SUBJECT):
        assert not leaked(canary, written), canary


def test_reasons_name_no_identifier() -> None:
    reason = outcome("x.vcf", vcf_text((SUBJECT, "01-701-1023")), context(tier="restricted"))
    assert isinstance(reason, str) and not re.search(r"01-701", reason)


def _nested(depth: int) -> bytes:
    """Sequences nested ``depth`` deep, written by hand (pydicom's writer recurses too)."""
    open_sq = b"\x08\x00\x50\x12SQ\x00\x00\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    close_sq = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    inner = b"\x08\x00\x00\x01SH\x02\x00xx"  # CodeValue
    return to_bytes(_dicom()) + open_sq * depth + inner + close_sq * depth


def _corrupt_sequence() -> bytes:
    """An explicit-VR sequence whose item claims more bytes than the file holds."""
    data = to_bytes(_dicom())
    # (0008,1250) SQ, undefined length, one item of length 0x7FFFFFF0, no delimiter
    bad = (
        b"\x08\x00\x50\x12SQ\x00\x00\xff\xff\xff\xff"
        + b"\xfe\xff\x00\xe0"
        + b"\xf0\xff\xff\x7f"
        + b"\x10\x00"
    )
    return data + bad


def _bad_vr() -> bytes:
    data = to_bytes(_dicom())
    return data + b"\x08\x00\x50\x12ZZ\x04\x00abcd"


def _bad_date() -> bytes:
    ds = _dicom()
    ds.add_new(0x00080021, "DA", "2014\\0102\\x")  # SeriesDate with odd values
    ds.add_new(0x0040A120, "DT", "2014010\x00")  # DateTime
    return to_bytes(ds)


@pytest.mark.parametrize(
    "make", [lambda: _nested(150), lambda: _nested(5000), _corrupt_sequence, _bad_vr, _bad_date]
)
def test_hostile_dicom_is_quarantined_not_a_crash(make) -> None:  # type: ignore[no-untyped-def]
    """Whatever pydicom raises on a hostile file, the file is quarantined with a reason."""
    data = make()
    try:
        result = formats.deidentify("x.dcm", data, context())
    except dicom.Rejected as exc:
        assert exc.reason
        return
    stored = result.data if isinstance(result.data, bytes) else result.data.read_bytes()
    assert not leaked("Qarbanian", stored)


def _with_words(ctx: formats.Context, *words: str) -> formats.Context:
    """The study's identifier dictionary holds ``words`` (names seen in identifying columns)."""
    from datalibrary.files.freetext import StudyWords
    from datalibrary.privacy.identifiers import digest

    secret = ctx.words.secret or ctx.uid_secret
    ctx.words = StudyWords(secret, frozenset(digest(secret, w.upper()) for w in words))
    return ctx


def test_aecg_possessive_of_the_patients_name() -> None:
    assert_safe("ecg.xml", _aecg("<text>seen by Qarbanian's doctor</text>"), context(), "Qarbanian")


@pytest.mark.parametrize(
    "extra_meta",
    [
        '##contig=<ID=chr3,length=100,species="Qarbanian">',
        "##reference=qarbanian_GRCh38.fa",
        '##INFO=<ID=XX,Number=1,Type=String,Description="x",Source="Qarbanian lab">',
    ],
)
def test_vcf_study_identifiers_in_header_fields(extra_meta: str) -> None:
    ctx = _with_words(context(tier="restricted"), "Qarbanian")
    assert_safe("x.vcf", _vcf(extra_meta), ctx, "Qarbanian")


def test_pdf_text_in_a_private_stream() -> None:
    from pypdf.generic import DecodedStreamObject, NameObject

    def mutate(writer) -> None:  # type: ignore[no-untyped-def]
        stream = DecodedStreamObject()
        stream.set_data(b"Patient Mr. Zyxwolf Qarbanian, born 1941-12-12")
        writer._root_object[NameObject("/PieceInfo")] = writer._add_object(stream)

    assert_safe("doc.pdf", _pdf_with(mutate), context(classification=PROTOCOLS), "Qarbanian")
