"""Several instances as one H2O cluster (distributed.py): the plan every instance derives from resourceconfig.json,
the leader's and the members' waits against fake H2O nodes (no JVM), then real `train` processes whose cluster
never forms or loses a member."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from h2o_gbm_trainer import cluster, distributed, jvm
from h2o_gbm_trainer.cluster import LocalH2O, NodeNetwork
from h2o_gbm_trainer.distributed import ClusterPlan, Hosts, Node
from h2o_gbm_trainer.environment import Environment
from h2o_gbm_trainer.errors import TrainingError, TrainingInputError
from h2o_sagemaker_local import opt_ml
from process_watch import no_process_left, processes_using

TWO_HOSTS = Hosts("algo-1", ("algo-1", "algo-2"))


def _environment(tmp_path: Path, resource_config: object) -> Environment:
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "resourceconfig.json").write_text(json.dumps(resource_config))
    return Environment.from_env({"SAGEMAKER_BASE_DIR": str(tmp_path)})


# --- the plan -------------------------------------------------------------------------------------------------


def test_without_a_resource_config_the_job_has_one_host(tmp_path: Path) -> None:
    hosts = distributed.read_hosts(Environment.from_env({"SAGEMAKER_BASE_DIR": str(tmp_path)}))

    assert (hosts.count, hosts.is_leader) == (1, True)


def test_the_hosts_are_sorted_and_the_first_leads(tmp_path: Path) -> None:
    config = {
        "current_host": "algo-1",
        "hosts": ["algo-3", "algo-1", "algo-2"],
        "network_interface_name": "eth0",
    }
    hosts = distributed.read_hosts(_environment(tmp_path, config))

    assert hosts.names == ("algo-1", "algo-2", "algo-3")
    assert (hosts.leader, hosts.is_leader, hosts.index("algo-3")) == ("algo-1", True, 2)
    member = distributed.read_hosts(_environment(tmp_path, config | {"current_host": "algo-2"}))
    assert (member.leader, member.is_leader) == ("algo-1", False)


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        (
            {"current_host": "algo-3", "hosts": ["algo-1", "algo-2"]},
            "current_host 'algo-3' is not one of the hosts",
        ),
        (
            {"current_host": "algo-1", "hosts": ["algo-1", "algo-1"]},
            "hosts must be a list of distinct host names",
        ),
        ({"current_host": "algo-1", "hosts": "algo-1"}, "hosts must be a list of distinct host names"),
        (["algo-1"], "hosts must be a list"),
    ],
)
def test_a_resource_config_that_makes_no_sense_is_named(tmp_path: Path, config: object, reason: str) -> None:
    with pytest.raises(TrainingError, match=reason):
        distributed.read_hosts(_environment(tmp_path, config))


def test_every_instance_derives_the_same_cluster_name_and_another_job_another() -> None:
    name = distributed.cluster_name("tuning-001-abc", TWO_HOSTS)

    assert name == distributed.cluster_name("tuning-001-abc", Hosts("algo-2", ("algo-1", "algo-2")))
    assert name.startswith("h2o-gbm-trainer-")
    assert name != distributed.cluster_name("tuning-002-def", TWO_HOSTS)
    assert name != distributed.cluster_name("tuning-001-abc", Hosts("algo-1", ("algo-1", "algo-2", "algo-3")))


def test_each_host_has_its_own_pair_of_ports_so_one_machine_can_hold_them_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        distributed, "_resolve", lambda name: {"algo-1": "10.0.0.5", "algo-2": "10.0.0.6"}[name]
    )

    plan = distributed.plan_cluster(
        Hosts("algo-2", TWO_HOSTS.names), "job", 54321, time.monotonic(), timeout_seconds=1
    )

    assert [node.address for node in plan.nodes] == ["10.0.0.5:54321", "10.0.0.6:54323"]
    assert (plan.leader.host, plan.me.host, [node.host for node in plan.members]) == (
        "algo-1",
        "algo-2",
        ["algo-2"],
    )
    assert plan.network() == NodeNetwork("10.0.0.6", 54323, plan.name, ("10.0.0.5:54321", "10.0.0.6:54323"))


def test_a_host_name_that_never_resolves_fails_after_the_join_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def resolve(name: str) -> str:
        if name == "algo-2":
            raise socket.gaierror(-2, "Name or service not known")
        return "127.0.0.1"

    monkeypatch.setattr(distributed, "_resolve", resolve)
    monkeypatch.setattr(distributed, "RESOLVE_RETRY_SECONDS", 0.05)
    began = time.monotonic()

    with pytest.raises(TrainingError, match=r"the host name algo-2 of resourceconfig.json does not resolve"):
        distributed.plan_cluster(TWO_HOSTS, "job", 54321, began, timeout_seconds=0.3)
    assert time.monotonic() - began < 2


def test_ports_beyond_the_last_one_are_refused() -> None:
    with pytest.raises(TrainingInputError, match="set a lower H2O_GBM_TRAINER_CLUSTER_PORT"):
        distributed.plan_cluster(TWO_HOSTS, "job", 65534, time.monotonic(), timeout_seconds=1)


@pytest.mark.parametrize(
    ("variables", "error"),
    [
        ({"H2O_GBM_TRAINER_CLUSTER_PORT": "80"}, "H2O_GBM_TRAINER_CLUSTER_PORT must be a port number"),
        (
            {"H2O_GBM_TRAINER_JOIN_TIMEOUT_SECONDS": "soon"},
            "H2O_GBM_TRAINER_JOIN_TIMEOUT_SECONDS must be a number",
        ),
        (
            {"H2O_GBM_TRAINER_JOIN_TIMEOUT_SECONDS": "-1"},
            "H2O_GBM_TRAINER_JOIN_TIMEOUT_SECONDS must be a number",
        ),
    ],
)
def test_bad_cluster_settings_are_named(variables: dict[str, str], error: str) -> None:
    env = Environment.from_env(variables)

    with pytest.raises(TrainingInputError, match=error):
        _ = env.cluster_base_port, env.join_timeout_seconds


def test_cluster_settings_and_their_defaults() -> None:
    assert (Environment.from_env({}).cluster_base_port, Environment.from_env({}).join_timeout_seconds) == (
        54321,
        300,
    )
    env = Environment.from_env(
        {"H2O_GBM_TRAINER_CLUSTER_PORT": "24000", "H2O_GBM_TRAINER_JOIN_TIMEOUT_SECONDS": "7.5"}
    )
    assert (env.cluster_base_port, env.join_timeout_seconds) == (24000, 7.5)


def test_a_cluster_node_listens_on_its_address_with_the_flatfile_and_the_clusters_name(
    tmp_path: Path,
) -> None:
    network = NodeNetwork("10.0.0.6", 54323, "h2o-gbm-trainer-abc", ("10.0.0.5:54321", "10.0.0.6:54323"))

    command = cluster.jvm_command(Path("java"), Path("h2o.jar"), "-Xmx1G", [], tmp_path, network)

    def value(flag: str) -> str:
        return command[command.index(flag) + 1]

    assert (value("-ip"), value("-web_ip"), value("-port"), value("-name")) == (
        "10.0.0.6",
        "10.0.0.6",
        "54323",
        "h2o-gbm-trainer-abc",
    )
    assert Path(value("-flatfile")).read_text() == "10.0.0.5:54321\n10.0.0.6:54323\n"
    assert "-baseport" not in command
    # A private node stays on loopback, on a free port, under a random name.
    private = cluster.jvm_command(Path("java"), Path("h2o.jar"), "-Xmx1G", [], tmp_path)
    assert private[private.index("-ip") + 1] == "127.0.0.1" and "-flatfile" not in private


def test_a_member_uses_the_start_up_archive_but_never_makes_it(tmp_path: Path) -> None:
    java, jar = tmp_path / "java", tmp_path / "h2o.jar"
    java.write_text("")
    jar.write_text("")
    environ = {"H2O_GBM_TRAINER_CACHE_DIR": str(tmp_path / "cache")}

    archive = jvm.startup_archive(java, jar, "-Xmx1G", 2**30, tmp_path, environ, may_record=False)

    assert (archive.options, archive.recording) == ([], False)


# --- waits against fake H2O nodes -----------------------------------------------------------------------------


class FakeNode(ThreadingHTTPServer):
    """Answers what the trainer asks an H2O node: /3/Cloud (`members` is the cluster it reports) and the leader's
    done key (404 until `done`)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FakeNodeHandler)
        self.members: list[str] = [self.address]
        self.consensus = True
        self.done = False
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def as_server(self) -> LocalH2O:
        return LocalH2O(port=self.port, startup_archive="off")

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class FakeNodeHandler(BaseHTTPRequestHandler):
    server: FakeNode

    def do_GET(self) -> None:
        if self.path.startswith("/3/Cloud"):
            nodes = [{"ip_port": address} for address in self.server.members]
            self._answer(200, {"cloud_size": len(nodes), "consensus": self.server.consensus, "nodes": nodes})
        elif self.path == f"/3/Frames/{distributed.DONE_KEY}/light" and self.server.done:
            self._answer(200, {"frames": [{}]})
        else:
            self._answer(404, {})

    def _answer(self, status: int, document: dict[str, object]) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def fake_nodes() -> Iterator[tuple[FakeNode, FakeNode]]:
    """A leader's node and a member's node."""
    leader, member = FakeNode(), FakeNode()
    yield leader, member
    for node in (leader, member):
        node.stop()


def _plan(current: str, leader: FakeNode, member: FakeNode) -> ClusterPlan:
    nodes = (Node("algo-1", "127.0.0.1", leader.port), Node("algo-2", "127.0.0.1", member.port))
    return ClusterPlan(Hosts(current, ("algo-1", "algo-2")), "h2o-gbm-trainer-test", nodes)


def test_the_cluster_is_formed_once_every_host_joined_and_it_agrees(fake_nodes, monkeypatch) -> None:
    leader, member = fake_nodes
    leader.members, leader.consensus = [leader.address, member.address], False
    threading.Timer(0.3, lambda: setattr(leader, "consensus", True)).start()
    began = time.monotonic()

    size = distributed.wait_for_cloud(leader.as_server(), _plan("algo-1", leader, member), began, 5)

    assert size == 2 and 0.25 < time.monotonic() - began < 2


def test_a_host_that_never_joins_is_named_after_the_join_timeout(fake_nodes) -> None:
    leader, member = fake_nodes  # the leader's node sees only itself
    began = time.monotonic()

    with pytest.raises(TrainingError) as failure:
        distributed.wait_for_cloud(leader.as_server(), _plan("algo-1", leader, member), began, 0.5)

    assert str(failure.value).startswith(
        "H2O cluster formed with 1 of 2 instances after 1 s: algo-2 (expected at "
    )
    assert f"algo-2 (expected at {member.address}) never joined" in str(failure.value)
    assert "H2O_GBM_TRAINER_JOIN_TIMEOUT_SECONDS" in str(failure.value)
    assert time.monotonic() - began < 2
    # A member whose leader never comes names the leader.
    with pytest.raises(
        TrainingError, match=r"1 of 2 instances after 0 s: algo-1 \(expected at .*\) never joined"
    ):
        distributed.wait_for_cloud(member.as_server(), _plan("algo-2", leader, member), time.monotonic(), 0.2)


def test_a_member_leaves_once_the_leader_says_it_is_done(fake_nodes) -> None:
    leader, member = fake_nodes
    threading.Timer(0.3, lambda: setattr(member, "done", True)).start()
    began = time.monotonic()

    distributed.serve_as_member(member.as_server(), _plan("algo-2", leader, member))

    assert 0.25 < time.monotonic() - began < 2


def test_a_member_fails_when_its_leader_goes_without_saying_it_is_done(fake_nodes, monkeypatch) -> None:
    leader, member = fake_nodes
    monkeypatch.setattr(distributed, "LOSS_SECONDS", 0.3)
    plan = _plan("algo-2", leader, member)
    threading.Timer(0.2, leader.stop).start()

    with pytest.raises(TrainingError) as failure:
        distributed.serve_as_member(member.as_server(), plan)

    assert str(failure.value) == (
        f"the H2O cluster's leader algo-1 ({leader.address}) stopped answering before it finished training; "
        "algo-1's log says why"
    )


def test_the_leader_stops_waiting_on_h2o_when_a_member_is_lost(fake_nodes, monkeypatch) -> None:
    """H2O would retry its calls to a dead node for ever: the watch stops the leader's own JVM instead, and the
    failure that follows is reported as the lost member."""
    leader, member = fake_nodes
    monkeypatch.setattr(distributed, "LOSS_SECONDS", 0.3)
    monkeypatch.setattr(distributed, "WATCH_POLL_SECONDS", 0.05)
    stopped = threading.Event()

    class Jvm:  # what the watch calls on the leader's JVM process
        def kill(self) -> None:
            stopped.set()

    server = LocalH2O(port=leader.port, startup_archive="off", process=Jvm())  # type: ignore[arg-type]
    with (
        pytest.raises(
            TrainingError, match=r"the H2O cluster lost algo-2 \(127.0.0.1:\d+\) while the leader trained"
        ),
        distributed.watching_members(_plan("algo-1", leader, member), server),
    ):
        member.stop()
        assert stopped.wait(5), "the leader's JVM was not stopped"
        raise ConnectionError("what h2o-py raises once its node is gone")


# --- real `train` processes -----------------------------------------------------------------------------------


@pytest.fixture
def two_host_job(jobs, tmp_path: Path) -> Iterator[tuple[list[Path], list[dict[str, str]]]]:
    """Two hosts' folders of one Titanic job, long enough to be caught training, and each host's environment: the
    host names resolving to loopback, a free pair of ports each, a scratch folder each. Checks that no process of
    the job is left, nor the leader's scratch files (a member killed with SIGKILL leaves its own, as an instance
    that dies does)."""
    hosts = opt_ml.host_names(2)
    hyperparameters = jobs.original_hyperparameters() | {
        "ntrees": "2000",
        "stopping_rounds": "0",
        "score_tree_interval": "1000",
    }
    channels = [
        opt_ml.InputChannel.of("training", jobs.train_csv),
        opt_ml.InputChannel.of("validation", jobs.validation_csv),
    ]
    base_dirs = [
        opt_ml.lay_out_training_job(
            tmp_path / host, hyperparameters, channels, current_host=host, hosts=hosts
        )
        for host in hosts
    ]
    base_port = opt_ml.free_port_block(4)
    shared = opt_ml.loopback_hosts_environment(hosts, tmp_path / "network") | {
        "TRAINING_JOB_NAME": f"distributed-test-{os.getpid()}",
        "H2O_GBM_TRAINER_CLUSTER_PORT": str(base_port),
    }
    environments = []
    for host in hosts:
        (tmp_path / "tmp" / host).mkdir(parents=True)
        environments.append(shared | {"TMPDIR": str(tmp_path / "tmp" / host)})
    yield base_dirs, environments
    left = processes_using(tmp_path)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == [], "a process of the job outlived it"
    assert list((tmp_path / "tmp" / "algo-1").iterdir()) == [], "the leader left a scratch file behind"


@pytest.mark.h2o
def test_a_host_that_never_starts_fails_the_job_within_the_join_timeout(jobs, two_host_job) -> None:
    (leader_dir, _), (environment, _) = two_host_job
    began = time.monotonic()

    run = jobs.run(leader_dir, environment | {"H2O_GBM_TRAINER_JOIN_TIMEOUT_SECONDS": "5"})

    assert run.returncode == 1, run.stderr
    assert run.failure is not None
    assert run.failure.startswith(
        "H2O cluster formed with 1 of 2 instances after 5 s: algo-2 (expected at 127.0.0.1:"
    )
    assert "never joined" in run.failure
    assert time.monotonic() - began < 5 + 10
    assert no_process_left(leader_dir.parent)
    assert not (leader_dir / "model" / "model-metadata.json").exists()


def _start_logging(base_dir: Path, environment: dict[str, str]) -> subprocess.Popen[bytes]:
    """`train` with its output in training.log, readable while it runs (as the local runner starts it)."""
    with (base_dir / "training.log").open("wb") as log:
        return subprocess.Popen(
            [str(Path(sys.executable).with_name("train"))],
            env=os.environ
            | {"H2O_GBM_TRAINER_MAX_MEM_SIZE": "1G", "PYTHONUNBUFFERED": "1"}
            | environment
            | {"SAGEMAKER_BASE_DIR": str(base_dir)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.mark.h2o
def test_a_member_lost_during_training_fails_the_leader_naming_it(two_host_job) -> None:
    (leader_dir, member_dir), (leader_environment, member_environment) = two_host_job
    leader = _start_logging(leader_dir, leader_environment)
    member = _start_logging(member_dir, member_environment)
    try:
        deadline = time.monotonic() + 60
        while "training started" not in (log := (leader_dir / "training.log").read_text()):
            assert leader.poll() is None and time.monotonic() < deadline, log
            time.sleep(0.05)
        assert "H2O cloud of 2 nodes" in log
        lost_at = time.monotonic()
        for pid in processes_using(member_dir):  # the member's instance dies: its `train` and its JVM
            os.kill(pid, signal.SIGKILL)
        returncode = leader.wait(timeout=30)
    finally:
        for process in (leader, member):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    failure = (leader_dir / "output" / "failure").read_text()
    assert returncode == 1, (leader_dir / "training.log").read_text()[-3000:]
    assert failure.startswith("the H2O cluster lost algo-2 (127.0.0.1:"), failure
    assert time.monotonic() - lost_at < distributed.LOSS_SECONDS + 10
    assert no_process_left(leader_dir.parent)


@pytest.mark.h2o
def test_an_interrupted_job_checkpoints_on_the_leaders_disk_and_resumes_from_it(jobs, two_host_job) -> None:
    """A spot interruption of a 2-instance job: each instance has its own checkpoint folder, as on SageMaker (which
    syncs every instance's folder with the job's checkpoint URI). H2O writes the checkpoint through the leader's
    own node, so it is on the leader's disk; the restarted job, every instance given those files, resumes."""
    base_dirs, environments = two_host_job
    leader_dir, member_dir = base_dirs
    ntrees = 120
    hyperparameters = jobs.original_hyperparameters() | {
        "ntrees": str(ntrees),
        "stopping_rounds": "0",  # every tree built: the count shows the resumed job finished the model
        "checkpoint_interval_seconds": "1",  # the first checkpoint at 10 trees, then about every second
    }
    for base_dir in base_dirs:
        (base_dir / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        (base_dir / "checkpoints").mkdir()
    # The job's own folder in the checkpoint folder (the tuning job's other training jobs share the URI).
    leader_checkpoints = leader_dir / "checkpoints" / environments[0]["TRAINING_JOB_NAME"]

    def run_both(until_checkpoint: bool) -> list[int]:
        processes = [
            _start_logging(base_dir, env) for base_dir, env in zip(base_dirs, environments, strict=True)
        ]
        try:
            if until_checkpoint:
                deadline = time.monotonic() + 60
                while not (leader_checkpoints / "checkpoint.json").exists():
                    assert time.monotonic() < deadline, (leader_dir / "training.log").read_text()[-3000:]
                    time.sleep(0.05)
                for process in processes:  # SageMaker stops every instance of an interrupted job
                    process.send_signal(signal.SIGTERM)
            return [process.wait(timeout=120) for process in processes]
        finally:
            for process in processes:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    leader_code, _ = run_both(until_checkpoint=True)

    assert leader_code == 1
    assert "stopped by SIGTERM" in (leader_dir / "output" / "failure").read_text()
    assert list((member_dir / "checkpoints").iterdir()) == [], "H2O wrote the checkpoint on the member's disk"
    assert json.loads((leader_checkpoints / "checkpoint.json").read_text())["finished"] is False

    # The restart: the checkpoint URI's files on every instance, fresh output folders.
    shutil.copytree(leader_dir / "checkpoints", member_dir / "checkpoints", dirs_exist_ok=True)
    for base_dir in base_dirs:
        (base_dir / "output" / "failure").unlink(missing_ok=True)
    assert run_both(until_checkpoint=False) == [0, 0], (leader_dir / "training.log").read_text()[-3000:]

    log = (leader_dir / "training.log").read_text()
    assert "H2O cloud of 2 nodes" in log
    resumed = int(log.split("resumed from checkpoint: ")[1].split()[0])
    assert 10 <= resumed < ntrees
    assert f": {ntrees} trees" in log  # "training finished in ... s: 150 trees"
    assert (leader_dir / "model" / "model-metadata.json").is_file()
    assert not (member_dir / "model" / "model-metadata.json").exists()
