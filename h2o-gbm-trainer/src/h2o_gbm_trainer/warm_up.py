"""Make the start-up archives before any real job: `python -m h2o_gbm_trainer.warm_up` (the image build runs it).

Trains one small GBM on synthetic data written here (a training and a validation channel), through the code every
job runs, so the JVM records the classes a job loads and the archive is written to the cache folder (jvm.py). Then
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
import sys
import tempfile
from pathlib import Path

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


def lay_out_job(base_dir: Path) -> Path:
    generator = random.Random(7)
    config = base_dir / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(HYPERPARAMETERS))
    for channel, rows in (("training", 300), ("validation", 100)):
        folder = base_dir / "input" / "data" / channel
        folder.mkdir(parents=True)
        (folder / f"{channel}.csv").write_text(_csv(rows, generator))
    return base_dir


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
    for heap in heaps:
        with tempfile.TemporaryDirectory(prefix="h2o-gbm-warm-up-") as root:
            train(Environment(base_dir=lay_out_job(Path(root)), max_mem_size=heap))
    folder = cache_dir(dict(os.environ))
    archives = sorted(path.name for path in folder.glob("*.jsa"))
    print(f"start-up archives in {folder} (${CACHE_DIR_ENV}): {', '.join(archives) or 'none'}")
    return 0 if archives else 1


if __name__ == "__main__":
    sys.exit(main())
