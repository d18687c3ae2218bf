"""The files a local run uploads to its channels, told apart as the trainer tells them (by their first bytes,
whatever their name): CSV with a header row, plain or gzip-compressed, or Parquet. And the validation set as the
CSV the endpoint is scored with."""

from __future__ import annotations

import gzip
import io
import zlib
from enum import StrEnum
from pathlib import Path

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"  # at the start and the end of a Parquet file
PARQUET_CONTENT_TYPE = "application/x-parquet"
CSV_CONTENT_TYPE = "text/csv"
SNIFF_BYTES = 4096  # of text, to tell CSV from binary
HEAD_BYTES = 65536  # of a file: enough to decompress SNIFF_BYTES of gzip-compressed text
GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib's setting for a gzip header and trailer


class FileFormat(StrEnum):
    CSV = "CSV"
    GZIP_CSV = "gzip-compressed CSV"
    PARQUET = "Parquet"


class NotChannelData(ValueError):
    """The file is none of the formats the trainer reads; the message says what is wrong with it."""


def file_format(head: bytes, tail: bytes) -> FileFormat:
    """What a file is, from its first bytes (``HEAD_BYTES`` are enough) and its last 4, after checking it is a whole
    Parquet file or a CSV text file with something in it."""
    if head.startswith(PARQUET_MAGIC):
        if len(head) < 12 or tail != PARQUET_MAGIC:
            raise NotChannelData("is not a whole Parquet file (it does not end with PAR1)")
        return FileFormat.PARQUET
    text, kind = head[:SNIFF_BYTES], FileFormat.CSV
    if head.startswith(GZIP_MAGIC):
        try:  # the start of the text only: a stream cut short here is not an error
            text, kind = (
                zlib.decompressobj(wbits=GZIP_WBITS).decompress(head, SNIFF_BYTES),
                FileFormat.GZIP_CSV,
            )
        except zlib.error as error:
            raise NotChannelData(f"is not a valid gzip file: {error}") from None
    if not text.strip():
        raise NotChannelData("is empty: give a CSV file with a header row")
    if b"\0" in text:
        raise NotChannelData("is neither CSV text (plain or gzip-compressed) nor a Parquet file")
    return kind


def format_of(path: Path) -> FileFormat:
    """``file_format`` of a file, reading only its ends: a large training file is read once, when it is uploaded."""
    with path.open("rb") as data:
        head = data.read(HEAD_BYTES)
        data.seek(max(data.seek(0, io.SEEK_END) - len(PARQUET_MAGIC), 0))
        return file_format(head, data.read())


def content_type_of(kind: FileFormat) -> str:
    """The channel ContentType the trainer requires for files of this format."""
    return PARQUET_CONTENT_TYPE if kind is FileFormat.PARQUET else CSV_CONTENT_TYPE


def csv_bytes(path: Path) -> bytes:
    """The file as CSV with a header row: Parquet written out by pyarrow (values quoted only where needed, nulls
    empty, as the trainer's CSV reader and the endpoint read them)."""
    content = path.read_bytes()
    kind = file_format(content, content[-len(PARQUET_MAGIC) :])
    if kind is FileFormat.GZIP_CSV:
        return gzip.decompress(content)
    if kind is FileFormat.PARQUET:
        import pyarrow.csv  # here, not at the top: the command line's option checks import this module
        import pyarrow.parquet

        output = io.BytesIO()
        pyarrow.csv.write_csv(
            pyarrow.parquet.read_table(io.BytesIO(content)),
            output,
            pyarrow.csv.WriteOptions(quoting_style="needed"),
        )
        return output.getvalue()
    return content
