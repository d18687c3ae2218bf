"""The ``/opt/ml`` tree SageMaker lays out for a container (its ``SAGEMAKER_BASE_DIR``).

A training job gets ``input/config/`` (hyperparameters.json with string values, inputdataconfig.json,
resourceconfig.json), one ``input/data/<channel>/`` folder per channel, ``model/`` and ``output/`` to write
to, and ``checkpoints/`` when the job has a CheckpointConfig. An endpoint's container gets ``model/``.

A job of several instances gets one tree per host, each with its own ``current_host`` in resourceconfig.json; the
host names (``algo-1`` ... ``algo-N``) resolve to the instances' addresses on SageMaker, and to 127.0.0.1 locally
through ``loopback_hosts_environment``.

The local runner lays out its jobs with this, and the trainer's, the predictor's and the images' tests lay out
theirs with it, so every one of them sees the tree SageMaker makes. Standard library only: the container
packages' tests import it without the emulator's dependencies."""

from __future__ import annotations

import json
import os
import random
import socket
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

NSS_WRAPPER_LIBRARY = "libnss_wrapper.so"
NSS_WRAPPER_FOLDERS = (
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/lib",
)


class HostNamesUnavailable(RuntimeError):
    """The host names of a job of several instances cannot be made to resolve here; the message says what to do."""


def host_names(instance_count: int) -> list[str]:
    """SageMaker's names for a job's instances: algo-1 ... algo-N."""
    return [f"algo-{index}" for index in range(1, instance_count + 1)]


def resource_config(
    current_host: str = "algo-1", hosts: Sequence[str] = ("algo-1",), network_interface_name: str = "lo"
) -> dict[str, object]:
    """resourceconfig.json of one host of the job: a process's interface is the loopback, a container's eth0 (the
    name SageMaker gives)."""
    return {
        "current_host": current_host,
        "hosts": list(hosts),
        "network_interface_name": network_interface_name,
    }


def find_nss_wrapper() -> Path | None:
    for folder in NSS_WRAPPER_FOLDERS:
        candidates = sorted(Path(folder).glob(f"{NSS_WRAPPER_LIBRARY}*"))
        if candidates:
            return candidates[0]
    return None


def require_nss_wrapper(hosts: Sequence[str]) -> Path:
    library = find_nss_wrapper()
    if library is None:
        raise HostNamesUnavailable(
            f"a training job of {len(hosts)} instances runs locally with nss_wrapper, which makes its host names "
            f"{', '.join(hosts)} resolve to 127.0.0.1: install Debian's libnss-wrapper (`make run` and `make test` do)"
        )
    return library


def loopback_hosts_environment(hosts: Sequence[str], folder: Path) -> dict[str, str]:
    """Environment variables under which ``hosts`` resolve to 127.0.0.1 for the processes given them, Python's and
    Java's resolvers alike, as SageMaker's instances resolve each other's names: nss_wrapper (Debian's
    ``libnss-wrapper``, preloaded) reads a hosts file written to ``folder``.

    glibc's HOSTALIASES is no substitute: it maps a name to another name that it then looks up in DNS only, never
    in /etc/hosts, so ``algo-1 localhost`` fails wherever the DNS server does not answer ``localhost`` (measured:
    Python's socket and Java's InetAddress both follow an alias to a public name, both fail on this one)."""
    library = require_nss_wrapper(hosts)
    folder.mkdir(parents=True, exist_ok=True)
    hosts_file = folder / "hosts"
    hosts_file.write_text("".join(f"127.0.0.1 {host}\n" for host in hosts), encoding="utf-8")
    preload = " ".join(item for item in (os.environ.get("LD_PRELOAD", ""), str(library)) if item)
    return {"LD_PRELOAD": preload, "NSS_WRAPPER_HOSTS": str(hosts_file)}


LOOPBACK_PORTS = (20000, 32000)
"""Where the hosts of a job get their ports: below Linux's ephemeral ports (32768-60999), which outgoing connections
take."""


class NoFreePorts(RuntimeError):
    pass


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(count: int, avoid: Collection[int] = ()) -> int:
    """The first of ``count`` consecutive ports on 127.0.0.1, in ``LOOPBACK_PORTS``, all free now and none in
    ``avoid``: a job's hosts each take two (H2O's REST port and the next), and a node whose port is taken cannot be
    where the others expect it."""
    low, high = LOOPBACK_PORTS
    for _ in range(200):
        base = random.randrange(low, high - count, 2)
        block = range(base, base + count)
        if not any(port in avoid for port in block) and all(_bindable(port) for port in block):
            return base
    raise NoFreePorts(f"no {count} free ports on 127.0.0.1 between {low} and {high}")


@dataclass(frozen=True)
class InputChannel:
    """One channel of a training job; ``files`` (name -> content) go into its ``input/data/<name>/`` folder."""

    name: str
    files: Mapping[str, bytes] = field(default_factory=dict)
    content_type: str = "text/csv"
    distribution: str = "FullyReplicated"
    input_mode: str = "File"

    @classmethod
    def of(cls, name: str, *paths: Path) -> InputChannel:
        """A channel holding copies of these files under their own names."""
        return cls(name, {path.name: path.read_bytes() for path in paths})

    def data_config(self) -> dict[str, str]:
        return {
            "ContentType": self.content_type,
            "TrainingInputMode": self.input_mode,
            "S3DistributionType": self.distribution,
            "RecordWrapperType": "None",
        }


def lay_out_training_job(
    base_dir: Path,
    hyperparameters: Mapping[str, str],
    channels: Iterable[InputChannel],
    checkpoints: bool = False,
    current_host: str = "algo-1",
    hosts: Sequence[str] = ("algo-1",),
    network_interface_name: str = "lo",
) -> Path:
    """``base_dir`` as SageMaker lays out /opt/ml for a training job (for ``current_host`` of ``hosts``); folders
    already there are kept."""
    channels = list(channels)
    config = base_dir / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(dict(hyperparameters)))
    (config / "inputdataconfig.json").write_text(
        json.dumps({channel.name: channel.data_config() for channel in channels})
    )
    (config / "resourceconfig.json").write_text(
        json.dumps(resource_config(current_host, hosts, network_interface_name))
    )
    for channel in channels:
        folder = base_dir / "input" / "data" / channel.name
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in channel.files.items():
            (folder / name).write_bytes(content)
    for output_folder in ("model", "output", *(["checkpoints"] if checkpoints else [])):
        (base_dir / output_folder).mkdir(exist_ok=True)
    return base_dir


def lay_out_hosting(base_dir: Path, model_files: Mapping[str, bytes]) -> Path:
    """``base_dir`` as SageMaker lays out /opt/ml for an endpoint's container: the model's files in model/."""
    model_dir = base_dir / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    for name, content in model_files.items():
        (model_dir / name).write_bytes(content)
    return base_dir
