"""The /opt/ml tree every local job and every container test runs in is the one SageMaker lays out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from h2o_sagemaker_local import opt_ml
from h2o_sagemaker_local.opt_ml import InputChannel, lay_out_hosting, lay_out_training_job


def tree(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


def test_a_training_job_gets_its_config_one_folder_per_channel_and_its_output_folders(tmp_path: Path) -> None:
    csv_file = tmp_path / "train.csv"
    csv_file.write_text("a,b\n1,2\n")
    base_dir = lay_out_training_job(
        tmp_path / "opt-ml",
        {"ntrees": "5"},
        [InputChannel.of("training", csv_file), InputChannel("validation", distribution="ShardedByS3Key")],
    )

    assert tree(base_dir) == {
        "input",
        "input/config",
        "input/config/hyperparameters.json",
        "input/config/inputdataconfig.json",
        "input/config/resourceconfig.json",
        "input/data",
        "input/data/training",
        "input/data/training/train.csv",
        "input/data/validation",
        "model",
        "output",
    }
    config = base_dir / "input" / "config"
    assert json.loads((config / "hyperparameters.json").read_text()) == {"ntrees": "5"}
    assert json.loads((config / "inputdataconfig.json").read_text()) == {
        "training": {
            "ContentType": "text/csv",
            "TrainingInputMode": "File",
            "S3DistributionType": "FullyReplicated",
            "RecordWrapperType": "None",
        },
        "validation": {
            "ContentType": "text/csv",
            "TrainingInputMode": "File",
            "S3DistributionType": "ShardedByS3Key",
            "RecordWrapperType": "None",
        },
    }
    assert json.loads((config / "resourceconfig.json").read_text()) == {
        "current_host": "algo-1",
        "hosts": ["algo-1"],
        "network_interface_name": "lo",
    }
    assert (base_dir / "input" / "data" / "training" / "train.csv").read_text() == "a,b\n1,2\n"


def test_a_checkpoint_folder_only_when_asked_and_existing_files_are_kept(tmp_path: Path) -> None:
    downloaded = tmp_path / "input" / "data" / "training" / "part-0.csv"
    downloaded.parent.mkdir(parents=True)
    downloaded.write_text("x\n1\n")

    lay_out_training_job(tmp_path, {}, [InputChannel("training")], checkpoints=True)

    assert downloaded.read_text() == "x\n1\n"
    assert (tmp_path / "checkpoints").is_dir()


def test_an_endpoint_gets_the_model_files_in_model(tmp_path: Path) -> None:
    base_dir = lay_out_hosting(tmp_path, {"model.zip": b"mojo", "model-metadata.json": b"{}"})

    assert tree(base_dir) == {"model", "model/model.zip", "model/model-metadata.json"}
    assert (base_dir / "model" / "model.zip").read_bytes() == b"mojo"


def test_each_host_of_a_job_of_several_instances_is_told_who_it_is(tmp_path: Path) -> None:
    hosts = opt_ml.host_names(3)
    base_dir = lay_out_training_job(
        tmp_path, {}, [InputChannel("training")], current_host="algo-2", hosts=hosts
    )

    assert hosts == ["algo-1", "algo-2", "algo-3"]
    assert json.loads((base_dir / "input" / "config" / "resourceconfig.json").read_text()) == {
        "current_host": "algo-2",
        "hosts": ["algo-1", "algo-2", "algo-3"],
        "network_interface_name": "lo",
    }


JAVA_RESOLVER = """
public class Resolve {
    public static void main(String[] names) throws Exception {
        for (String name : names) System.out.println(name + "=" + java.net.InetAddress.getByName(name).getHostAddress());
    }
}
"""


def test_the_host_names_resolve_to_loopback_for_python_and_java(tmp_path: Path) -> None:
    """What the trainer's cluster needs of the local emulation: SageMaker's host names resolving, in Python (the
    trainer resolves them for H2O's flatfile) and in Java alike."""
    if opt_ml.find_nss_wrapper() is None:
        pytest.fail("Debian's libnss-wrapper is not installed (make test installs it)")
    environment = opt_ml.loopback_hosts_environment(["algo-1", "algo-2"], tmp_path / "network")
    python = subprocess.run(
        [
            sys.executable,
            "-c",
            "import socket; print(*(socket.gethostbyname(h) for h in ('algo-1', 'algo-2')))",
        ],
        env={"PATH": "/usr/bin:/bin"} | environment,
        capture_output=True,
        text=True,
        check=True,
    )
    (tmp_path / "Resolve.java").write_text(JAVA_RESOLVER)
    java = subprocess.run(
        ["java", str(tmp_path / "Resolve.java"), "algo-1", "algo-2"],
        env={"PATH": "/usr/bin:/bin"} | environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    assert python.stdout.split() == ["127.0.0.1", "127.0.0.1"]
    assert java.stdout.split() == ["algo-1=127.0.0.1", "algo-2=127.0.0.1"]
