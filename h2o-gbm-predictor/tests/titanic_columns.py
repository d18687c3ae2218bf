"""The example Titanic model's columns, from the header of the examples' CSV it is trained on: the inputs in the
model's order (the CSV's, the target left out) and every name the model knows."""

from pathlib import Path

EXAMPLE_CSV = Path(__file__).resolve().parents[2] / "examples" / "train.csv"
TARGET = "Survived"
KNOWN_COLUMNS = EXAMPLE_CSV.open(encoding="utf-8").readline().strip().split(",")
INPUT_COLUMNS = [name for name in KNOWN_COLUMNS if name != TARGET]
