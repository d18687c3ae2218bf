"""The example's validation rows as a batch transform job takes them."""

from __future__ import annotations

import csv
import io
from pathlib import Path

VALIDATION_CSV = Path(__file__).resolve().parents[2] / "examples" / "validation.csv"


def validation_rows(path: Path = VALIDATION_CSV) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def headerless_csv(rows: list[dict[str, str]], columns: list[str]) -> bytes:
    """Records as SageMaker's CSV algorithms take them: no header line, the model's input columns in order."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([[row[name] for name in columns] for row in rows])
    return buffer.getvalue().encode()
