"""Make the start-up archives before any real job: `python -m h2o_gbm_trainer.warm_up` (the image build runs it).

Trains one small GBM on synthetic data written here (a CSV training channel and a Parquet validation channel, so
both readers' classes are recorded: a Titanic Parquet job took 3.04 s with an archive recorded from CSV alone, 2.78
s with one that holds the Parquet reader, medians of 5), through the code every job runs, so the JVM records the
classes a job loads and the archive is written to the cache folder (jvm.py). Then
again with a 32 GB heap: such a JVM has no compressed object pointers (an instance with 64 GB of memory or more,
whose default heap is half of it) and needs an archive of its own. Where an archive exists already, its job just
uses it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

from .cluster import local_h2o
from .data import PARQUET_CONTENT_TYPE
from .environment import Environment
from .jvm import CACHE_DIR_ENV, cache_dir
from .training import train

DEFAULT_HEAPS = ("1G", "32G")
HYPERPARAMETERS = {
    "target": "label",
    "classification": "true",
    "categorical_columns": "segment",
    "ntrees": "5",
    "seed": "1",
}


def _csv(rows: int, generator: random.Random) -> str:
    lines = ["x1,x2,segment,label"]
    for _ in range(rows):
        x1, x2, segment = generator.gauss(0, 1), generator.randrange(10), generator.choice("abc")
        label = int(x1 + (segment == "b") + generator.gauss(0, 0.5) > 0.5)
        lines.append(f"{x1:.4f},{x2},{segment},{label}")
    return "\n".join(lines) + "\n"


def lay_out_job(base_dir: Path, validation_parquet: Path) -> Path:
    """A job's /opt/ml: synthetic CSV for training, the Parquet part files of ``validation_parquet`` to validate."""
    config = base_dir / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(HYPERPARAMETERS))
    content_types = {"training": "text/csv", "validation": PARQUET_CONTENT_TYPE}
    (config / "inputdataconfig.json").write_text(
        json.dumps(
            {channel: {"ContentType": content_type} for channel, content_type in content_types.items()}
        )
    )
    training = base_dir / "input" / "data" / "training"
    training.mkdir(parents=True)
    (training / "training.csv").write_text(_csv(300, random.Random(7)))
    shutil.copytree(validation_parquet, base_dir / "input" / "data" / "validation")
    return base_dir


def write_parquet(csv_text: str, folder: Path) -> None:
    """``csv_text`` as Parquet part files in ``folder``, written by H2O in a JVM that records no archive."""
    import h2o

    source = folder.with_suffix(".csv")
    source.write_text(csv_text)
    with local_h2o(2**30, may_record_archive=False):
        frame = h2o.import_file(str(source), header=1)
        h2o.export_file(frame, str(folder), format="parquet", write_checksum=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m h2o_gbm_trainer.warm_up", description=__doc__)
    parser.add_argument(
        "--heap",
        action="append",
        help=f"JVM heaps to make archives for (default: {' and '.join(DEFAULT_HEAPS)})",
    )
    heaps = parser.parse_args(argv).heap or list(DEFAULT_HEAPS)
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s [warm-up] %(message)s"
    )
    with tempfile.TemporaryDirectory(prefix="h2o-gbm-warm-up-") as data:
        validation_parquet = Path(data) / "validation"
        write_parquet(_csv(100, random.Random(8)), validation_parquet)
        for heap in heaps:
            with tempfile.TemporaryDirectory(prefix="h2o-gbm-warm-up-") as root:
                train(Environment(base_dir=lay_out_job(Path(root), validation_parquet), max_mem_size=heap))
    folder = cache_dir(dict(os.environ))
    archives = sorted(path.name for path in folder.glob("*.jsa"))
    print(f"start-up archives in {folder} (${CACHE_DIR_ENV}): {', '.join(archives) or 'none'}")
    return 0 if archives else 1


if __name__ == "__main__":
    sys.exit(main())
