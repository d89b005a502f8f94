"""Files of other formats built in the test (no download): HL7 aECG XML, VCF (plain and
bgzipped), PDFs (reportlab, and raw PDF objects for odd font encodings)."""

from __future__ import annotations

import io

AECG_NS = "urn:hl7-org:v3"


def aecg(
    subject: str = "01-701-1015",
    *,
    patient: tuple[str, str] = ("Alice", "Canary"),
    birth: str = "19411212",
    when: str = "20140102",
    investigator: tuple[str, str] = ("Bertram", "Canaryson"),
    site: str = "SITE-CANARY-7",
    annotation: str = "Normal sinus rhythm",
    leads: tuple[str, ...] = ("I", "II", "V1"),
    extra: str = "",
    root_name: str = "AnnotatedECG",
) -> bytes:
    """A small but complete aECG: subject with demographics, trial site and investigator,
    one series of ``leads`` at 500 Hz, annotations; identifiers and dates to replace."""
    sequences = "".join(
        f"""<component><sequence><code code="MDC_ECG_LEAD_{lead}" codeSystem="2.16.840.1.113883.6.24"/>
        <value xsi:type="SLIST_PQ"><origin value="0" unit="uV"/><scale value="5" unit="uV"/>
        <digits>0 5 12 30 12 -4 -8 0</digits></value></sequence></component>"""
        for lead in leads
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- exported for {patient[0]} {patient[1]} -->
<{root_name} xmlns="{AECG_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <id root="2.16.840.1.113883.3.1234.9.{subject.replace("-", "")}" extension="ECG-{subject}-1"/>
  <code code="93000" codeSystem="2.16.840.1.113883.6.12"/>
  <text>ECG of {patient[0]} {patient[1]} recorded {when[:4]}-{when[4:6]}-{when[6:]} at site {site}</text>
  <effectiveTime><low value="{when}091000"/><high value="{when}091010"/></effectiveTime>
  <componentOf><timepointEvent><code code="VISIT1"/>
    <effectiveTime><center value="{when}"/></effectiveTime>
    <componentOf><subjectAssignment>
      <subject><trialSubject>
        <id root="2.16.840.1.113883.3.1234.5" extension="{subject}"/>
        <code code="SCREENING"/>
        <subjectDemographicPerson>
          <name><given>{patient[0]}</given><family>{patient[1]}</family></name>
          <administrativeGenderCode code="F" codeSystem="2.16.840.1.113883.5.1"/>
          <birthTime value="{birth}"/>
        </subjectDemographicPerson>
      </trialSubject></subject>
      <componentOf><clinicalTrial>
        <id root="2.16.840.1.113883.3.1234.1" extension="CDISCPILOT01"/>
        <title>Pilot study</title>
        <location><trialSite>
          <id root="2.16.840.1.113883.3.1234.2" extension="{site}"/>
          <location><name>Canary General Hospital</name>
            <addr><streetAddressLine>12 Canary Road</streetAddressLine><city>Birdtown</city></addr></location>
          <responsibleParty><trialInvestigator>
            <id root="2.16.840.1.113883.3.1234.3" extension="INV-{investigator[1]}"/>
            <investigatorPerson><name><given>{investigator[0]}</given><family>{investigator[1]}</family></name>
              <telecom value="tel:+1-555-867-5309"/></investigatorPerson>
          </trialInvestigator></responsibleParty>
        </trialSite></location>
      </clinicalTrial></componentOf>
    </subjectAssignment></componentOf>
  </timepointEvent></componentOf>
  <component><series>
    <id root="2.16.840.1.113883.3.1234.6.{subject.replace("-", "")}"/>
    <code code="RHYTHM" codeSystem="2.16.840.1.113883.5.4"/>
    <effectiveTime><low value="{when}091000.000"/><high value="{when}091010.000"/></effectiveTime>
    <component><sequenceSet>
      <component><sequence><code code="TIME_ABSOLUTE" codeSystem="2.16.840.1.113883.5.4"/>
        <value xsi:type="GLIST_TS"><head value="{when}091000.000"/><increment value="0.002" unit="s"/></value>
      </sequence></component>
      {sequences}
    </sequenceSet></component>
    <subjectOf><annotationSet><component><annotation>
      <code code="MDC_ECG_INTERPRETATION_STATEMENT" codeSystem="2.16.840.1.113883.6.24"/>
      <value xsi:type="ST">{annotation}</value>
    </annotation></component></annotationSet></subjectOf>
  </series></component>
  {extra}
</{root_name}>
""".encode()


def vcf_text(
    samples: tuple[str, ...] = ("01-701-1015",),
    *,
    file_date: str = "20140102",
    variants: int = 3,
    extra_meta: str = "",
) -> bytes:
    lines = [
        "##fileformat=VCFv4.2",
        f"##fileDate={file_date}",
        "##source=VarCaller-2.1 pipeline for Alice Canary",
        "##reference=file:///data/canary_general/alice_canary/GRCh38.fa",
        "##contig=<ID=chr1,length=248956422>",
        "##contig=<ID=chr2,length=242193529,URL=file:///home/alice_canary/refs/chr2.fa>",
        '##INFO=<ID=DP,Number=1,Type=Integer,Description="Total depth">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">',
        "##individual=Alice Canary, born 1941-12-12",
        "##commandline=bcftools call /home/canary/01-701-1015.bam",
        *(f'##SAMPLE=<ID={s},Description="Alice Canary blood draw 2014-01-02">' for s in samples),
        *([f"##PEDIGREE=<Original={samples[0]}>"] if samples else []),
        "##PEDIGREE=<Child=01-701-1015,Mother=Carol Canary>",
    ]
    if extra_meta:
        lines.append(extra_meta)
    lines.append(
        "\t".join(
            [
                "#CHROM",
                "POS",
                "ID",
                "REF",
                "ALT",
                "QUAL",
                "FILTER",
                "INFO",
                *(["FORMAT"] if samples else []),
                *samples,
            ]
        )
    )
    for i in range(variants):
        row = [
            f"chr{1 + i % 2}",
            str(10_000 + i * 137),
            f"rs{1000 + i}",
            "A",
            "G",
            "50",
            "PASS",
            f"DP={20 + i}",
        ]
        if samples:
            row += ["GT:DP", *[f"0/1:{20 + i}" for _ in samples]]
        lines.append("\t".join(row))
    return ("\n".join(lines) + "\n").encode()


def bgzip(data: bytes) -> bytes:
    import os
    import tempfile

    import pysam

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "x.vcf.gz")
        with pysam.BGZFile(path, "wb") as out:
            out.write(data)
        with open(path, "rb") as handle:
            return handle.read()


def pdf(lines: list[str], *, author: str = "", title: str = "") -> bytes:
    """A text PDF drawn with reportlab (standard fonts, real text objects)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4)
    if author:
        page.setAuthor(author)
    if title:
        page.setTitle(title)
    y = 800
    for line in lines:
        page.drawString(72, y, line)
        y -= 18
    page.showPage()
    page.save()
    return out.getvalue()


def scanned_pdf() -> bytes:
    """A page that is only an image (a scan): nothing to extract, nothing to check."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    png = io.BytesIO()
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x80" * 8 for _ in range(8))
    png.write(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4)
    page.drawImage(ImageReader(io.BytesIO(png.getvalue())), 72, 500, 200, 200)
    page.showPage()
    page.save()
    return out.getvalue()


def private_glyphs_pdf(text: str) -> bytes:
    """A PDF drawn with a standard font re-encoded to private glyph names (``/cid001``...,
    outside the Adobe Glyph List) and no ToUnicode: a subset font as some generators write."""
    from pypdf import PdfWriter
    from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, NameObject, NumberObject

    writer = PdfWriter()
    page = writer.add_blank_page(595, 842)
    differences = ArrayObject([NumberObject(32), *[NameObject(f"/cid{i:03d}") for i in range(95)]])
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
            NameObject("/Encoding"): DictionaryObject(
                {NameObject("/Type"): NameObject("/Encoding"), NameObject("/Differences"): differences}
            ),
        }
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
    )
    content = DecodedStreamObject()
    content.set_data(b"BT /F1 12 Tf 72 700 Td (" + text.encode("ascii") + b") Tj ET")
    page[NameObject("/Contents")] = writer._add_object(content)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def odd_encoding_pdf(text: str) -> bytes:
    """A PDF whose font maps codes to glyphs with no Unicode mapping (a Type3 font without
    ToUnicode, codes in the private range): what a PDF with text in an odd encoding shows an
    extractor. Built with pypdf's objects."""
    from pypdf import PdfWriter
    from pypdf.generic import (
        ArrayObject,
        DecodedStreamObject,
        DictionaryObject,
        FloatObject,
        NameObject,
        NumberObject,
    )

    writer = PdfWriter()
    page = writer.add_blank_page(595, 842)
    glyph = DecodedStreamObject()
    glyph.set_data(b"0 0 d0 0 0 500 700 re f")
    procs = DictionaryObject({NameObject("/g"): writer._add_object(glyph)})
    differences = ArrayObject([NumberObject(1), *[NameObject("/g") for _ in range(255)]])
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type3"),
            NameObject("/FontBBox"): ArrayObject(
                [NumberObject(0)] * 2 + [NumberObject(500), NumberObject(700)]
            ),
            NameObject("/FontMatrix"): ArrayObject(
                [
                    FloatObject(0.001),
                    NumberObject(0),
                    NumberObject(0),
                    FloatObject(0.001),
                    NumberObject(0),
                    NumberObject(0),
                ]
            ),
            NameObject("/CharProcs"): procs,
            NameObject("/Encoding"): DictionaryObject(
                {NameObject("/Type"): NameObject("/Encoding"), NameObject("/Differences"): differences}
            ),
            NameObject("/FirstChar"): NumberObject(1),
            NameObject("/LastChar"): NumberObject(255),
            NameObject("/Widths"): ArrayObject([NumberObject(500)] * 255),
        }
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
    )
    # the text's bytes shifted into codes the font maps to unnamed glyphs
    codes = bytes(((ord(c) + 100) % 254) + 1 for c in text)
    content = DecodedStreamObject()
    escaped = codes.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    content.set_data(b"BT /F1 12 Tf 72 700 Td (" + escaped + b") Tj ET")
    page[NameObject("/Contents")] = writer._add_object(content)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def zlib_bomb_pdf(megabytes: int = 100) -> bytes:
    """A page whose content stream inflates to ``megabytes`` of spaces from a few hundred KB."""
    import zlib

    from pypdf import PdfWriter
    from pypdf.generic import NameObject, StreamObject

    writer = PdfWriter()
    page = writer.add_blank_page(595, 842)
    stream = StreamObject()
    stream._data = zlib.compress(b" " * (megabytes << 20), 9)
    stream[NameObject("/Filter")] = NameObject("/FlateDecode")
    page[NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
