"""VCF (plain or bgzipped) with its sample pseudonymized; genomic data is a restricted tier.

A genome identifies its owner by nature: no de-identification makes variant calls anonymous.
So VCF files enter only a collection created with ``tier='restricted'`` (whose files are
served only through grants a steward approved for the tier, ``files.tiers``); what we remove
is everything that names the person or the place beyond the genotypes:

- the sample column of the ``#CHROM`` line becomes the subject's pseudonym (the study's
  USUBJID token, through the collection's subject template) — action D. One sample per file:
  erasing a subject must remove exactly their file (split cohort VCFs with
  ``bcftools +split``);
- ``##SAMPLE`` lines keep only their ``ID`` (pseudonymized); ``##PEDIGREE`` lines are kept
  only when every member is a sample of the file (pseudonymized), else removed;
- ``##fileDate`` is moved by the subject's date offset (the same as the study's tables) — C;
- ``##reference`` / ``##assembly`` that are paths or URLs keep their last part only (a path
  often names a person or a site) — D;
- header descriptions are scrubbed like free text — S; ``##source`` keeps the program's name;
- every other meta line (``##individual``, command lines with file paths, vendor lines...)
  is removed — X: only the structural lines a reader needs are known to be harmless.

The sample id, in any case, is replaced by the pseudonym in every meta line kept. Data lines
pass unchanged, after a check that none quotes the sample id (in any case) and none has more
columns than the ``#CHROM`` line (htslib would ignore an undeclared sample's genotypes). The result is read
back with pysam (htslib): a file htslib cannot read is rejected, and the index gets the
reference, sample count and variant count from it. Truncated bgzip (no BGZF end-of-file
block, or a member cut short) and gzip bombs are rejected.
"""

from __future__ import annotations

import os
import re
import tempfile
import zlib
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from datalibrary.files import freetext
from datalibrary.files.deidentified import VCF, Context, Deidentified
from datalibrary.files.dicom import Rejected, shift_da

MAX_TEXT_BYTES = 1 << 30
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
FIXED = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]
STRUCTURED = {"INFO", "FORMAT", "FILTER", "ALT", "contig", "META"}
SIMPLE = {"fileformat", "phasing"}
META = re.compile(r"^##([A-Za-z0-9_.-]+)=(.*)$")


def _inflate(data: bytes) -> bytes:
    """All gzip members, at most ``MAX_TEXT_BYTES`` (a bomb stops there)."""
    out, total, rest = [], 0, data
    while rest:
        if rest[:2] != b"\x1f\x8b":
            raise Rejected("data after the last gzip member is not gzip: corrupt bgzip file")
        inflater = zlib.decompressobj(wbits=31)
        try:
            chunk = inflater.decompress(rest, MAX_TEXT_BYTES + 1 - total)
        except zlib.error:
            raise Rejected("corrupt gzip/BGZF data") from None
        total += len(chunk)
        if total > MAX_TEXT_BYTES:
            raise Rejected(f"VCF decompresses to more than {MAX_TEXT_BYTES >> 30} GiB")
        if not inflater.eof:
            raise Rejected("truncated gzip/BGZF data: a compressed block is cut short")
        out.append(chunk)
        rest = inflater.unused_data
    return b"".join(out)


def _split(text: bytes) -> tuple[list[str], str, bytes]:
    """Meta lines, the ``#CHROM`` line and the data lines (bytes)."""
    found = re.search(rb"(?m)^#CHROM[^\n]*\n?", text)
    if found is None:
        raise Rejected("no #CHROM header line: not a VCF")
    try:
        head = text[: found.start()].decode("utf-8")
        chrom = found.group(0).decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise Rejected("the VCF header is not UTF-8 text") from None
    meta = [line.rstrip("\r") for line in head.split("\n") if line.strip()]
    for number, line in enumerate(meta, 1):
        if not line.startswith("##"):
            raise Rejected(f"header line {number} does not start with '##'")
    return meta, chrom, text[found.end() :]


def _fields(value: str) -> list[tuple[str, str]]:
    """``<ID=a,Description="b, c">`` as (key, raw value) pairs, quotes kept."""
    inner = value[1:-1] if value.startswith("<") and value.endswith(">") else None
    if inner is None:
        raise Rejected("a structured header line is not <KEY=VALUE,...>")
    parts = re.findall(r'([A-Za-z0-9_.-]+)=("(?:[^"\\]|\\.)*"|[^,]*)', inner)
    return [(k, v) for k, v in parts]


def _joined(pairs: list[tuple[str, str]]) -> str:
    return "<" + ",".join(f"{k}={v}" for k, v in pairs) + ">"


class _Header:
    def __init__(self, context: Context, sample: str, pseudonym: str, offset: int) -> None:
        self.context = context
        self.sample = sample
        self.pseudonym = pseudonym
        self.offset = offset
        self.actions: Counter[str] = Counter()
        self.reference: str | None = None
        self.file_date: date | None = None
        self.mention = re.compile(r"(?<![A-Za-z0-9])" + re.escape(sample) + r"(?![A-Za-z0-9])", re.IGNORECASE)

    def text(self, value: str) -> str:
        cleaned = freetext.scrub(self.mention.sub(self.pseudonym, value), self.context.words)
        if cleaned != value:
            self.actions["S"] += 1
        return cleaned

    def value(self, key: str, value: str) -> str:
        """A field of a structured line: descriptions scrubbed, paths and URLs cut to their
        last part (``URL=file:///home/alice/ref.fa`` names a person)."""
        if key in ("Description", "Source"):
            return self.text(value)
        if key in ("URL", "assembly") or "/" in value or "\\" in value:
            base = re.split(r"[/\\]", value.strip('"').rstrip("/\\"))[-1]
            if base != value:
                self.actions["D"] += 1
                return f'"{base}"' if value.startswith('"') else base
        return value

    def line(self, line: str) -> str | None:
        """A kept meta line, the sample id replaced by the pseudonym wherever it is quoted
        (a field, a reference file name, a simple line), and the words of the study's
        identifier dictionary replaced too."""
        kept = self._line(line)
        if kept is None:
            return None
        if self.mention.search(kept):
            self.actions["D"] += 1
            kept = self.mention.sub(self.pseudonym, kept)
        known = freetext.scrub_known_words(kept, self.context.words)  # names of the study's tables
        if known != kept:
            self.actions["S"] += 1
        return known

    def _line(self, line: str) -> str | None:
        found = META.match(line)
        if found is None:
            self.actions["X"] += 1
            return None
        key, value = found.groups()
        if key in SIMPLE:
            self.actions["K"] += 1
            return line
        if key in STRUCTURED:
            pairs = [(k, self.value(k, v)) for k, v in _fields(value)]
            return f"##{key}={_joined(pairs)}"
        if key in ("reference", "assembly"):
            base = re.split(r"[/\\]", value.strip().rstrip("/\\"))[-1]
            if base != value:
                self.actions["D"] += 1
            self.reference = self.reference or base
            return f"##{key}={base}"
        if key == "source":  # the program's name and version only: the rest may name anything
            program = re.match(r"[A-Za-z0-9_.+-]*", value.strip()).group(0)  # type: ignore[union-attr]
            if program != value:
                self.actions["X"] += 1
            return f"##source={program}" if program else None
        if key == "fileDate":
            shifted = shift_da(value, self.offset)
            self.actions["C"] += 1
            if shifted is None:
                return None
            self.file_date = date(int(shifted[:4]), int(shifted[4:6]), int(shifted[6:]))
            return f"##fileDate={shifted}"
        if key == "SAMPLE":
            ids = [v for k, v in _fields(value) if k == "ID"]
            self.actions["D" if ids == [self.sample] else "X"] += 1
            return f"##SAMPLE=<ID={self.pseudonym}>" if ids == [self.sample] else None
        if key == "PEDIGREE":
            pairs = _fields(value)
            if pairs and all(v.strip('"') == self.sample for _, v in pairs):
                self.actions["D"] += 1
                return f"##PEDIGREE={_joined([(k, self.pseudonym) for k, _ in pairs])}"
        self.actions["X"] += 1  # ##individual, command lines, vendor lines: removed
        return None


def _read_back(path: Path) -> dict[str, Any]:
    """htslib reads the de-identified file: samples, contigs, reference, variant count."""
    import pysam

    pysam.set_verbosity(0)
    try:
        with pysam.VariantFile(str(path)) as reader:
            samples = list(reader.header.samples)
            contigs = len(reader.header.contigs)
            variants = sum(1 for _ in reader.fetch())
    except (ValueError, OSError) as exc:
        raise Rejected(f"htslib cannot read the VCF ({type(exc).__name__})") from None
    return {"samples": len(samples), "sample_ids": samples, "contigs": contigs, "variants": variants}


def _write(header: str, body: bytes, compressed: bool, directory: str) -> Path:
    path = Path(directory) / ("out.vcf.gz" if compressed else "out.vcf")
    if compressed:
        import pysam

        with pysam.BGZFile(str(path), "wb") as out:
            out.write(header.encode())
            out.write(body)
    else:
        path.write_bytes(header.encode() + body)
    return path


def deidentify(data: bytes, context: Context) -> Deidentified:
    if context.tier != "restricted":
        raise Rejected(
            "genomic data (VCF) identifies its owner by nature: it goes only into a collection "
            "of tier 'restricted' (create one with --tier restricted)"
        )
    compressed = data[:2] == b"\x1f\x8b"
    if compressed and data[12:14] == b"BC" and not data.endswith(BGZF_EOF):
        raise Rejected("bgzip file without its end-of-file block: the file is truncated")
    text = _inflate(data) if compressed else data
    meta, chrom, body = _split(text)
    del text
    columns = chrom.split("\t")
    fixed = len(FIXED) + (1 if len(columns) > len(FIXED) else 0)
    if columns[: len(FIXED)] != FIXED or (len(columns) > len(FIXED) and columns[len(FIXED)] != "FORMAT"):
        raise Rejected("the #CHROM line does not have the VCF columns #CHROM POS ID REF ALT QUAL FILTER INFO")
    samples = columns[fixed:]
    if len(samples) != 1:
        raise Rejected(
            "no sample column: a sites-only VCF holds no subject's data"
            if not samples
            else f"{len(samples)} samples in one VCF: one sample per file (split it with bcftools +split) "
            "so erasing a subject removes exactly their file"
        )
    sample = samples[0].strip()
    subject = context.resolve_subject(
        {"PatientID": sample, "ClinicalTrialSubjectID": sample, "ClinicalTrialProtocolID": ""}
    )
    if len(sample) >= 3 and re.search(
        rb"(?<![A-Za-z0-9])" + re.escape(sample.encode()) + rb"(?![A-Za-z0-9])", body, re.IGNORECASE
    ):
        raise Rejected("data lines quote the sample id: they cannot be passed unchanged")
    if re.search(rb"(?m)^(?:[^\t\n]*\t){%d}[^\t\n]*\t" % (fixed + len(samples) - 1), body):
        # htslib ignores columns beyond the header's: another person's genotypes would pass
        raise Rejected("a data line has more columns than the #CHROM line: a sample not declared")
    cleaner = _Header(context, sample, subject.pseudonym, subject.offset_days)
    lines = [kept for line in meta if (kept := cleaner.line(line)) is not None]
    if not lines or not lines[0].startswith("##fileformat=VCF"):
        raise Rejected("the first header line is not ##fileformat=VCF...")
    header = "\n".join([*lines, "\t".join([*columns[:fixed], subject.pseudonym])]) + "\n"
    with tempfile.TemporaryDirectory(prefix="datalibrary-vcf-") as directory:
        os.chmod(directory, 0o700)
        path = _write(header, body, compressed, directory)
        read = _read_back(path)
        out = path.read_bytes()
    if read["sample_ids"] != [subject.pseudonym]:
        raise Rejected("htslib reads other samples than the pseudonymized one")
    details = {
        "reference": cleaner.reference,
        "samples": read["samples"],
        "variants": read["variants"],
        "contigs": read["contigs"],
        "compression": "bgzip" if compressed else "none",
        "fileformat": lines[0].partition("=")[2],
    }
    metadata = {"acquisition_date": cleaner.file_date}
    return Deidentified(
        out, VCF, subject.pseudonym, metadata, details, cleaner.actions, "VCF sample pseudonym v1"
    )
