"""Several training instances as one H2O cluster.

SageMaker starts the same container on every instance of a job with `ResourceConfig.InstanceCount` N and tells each
one who it is in `input/config/resourceconfig.json`, e.g.
`{"current_host": "algo-1", "hosts": ["algo-1", "algo-2"], "network_interface_name": "eth0"}`; the host names resolve
to the instances' addresses. With N > 1 the instances form one H2O cluster:

- every node gets a flatfile of all nodes (`address:port`), the cluster's name (a digest of TRAINING_JOB_NAME and the
  hosts, the same on every instance) and listens on its own address; host i of the sorted list serves H2O's REST API
  on `base + 2 * i` (H2O's internal traffic uses the next port), so the same plan works when all hosts are one
  machine, as in the local emulation;
- the leader, the first host in sorted order, waits until the cluster has N nodes, loads the channels, trains, and
  alone writes the model, model-metadata.json and the metric lines. It watches the members meanwhile: H2O itself
  waits forever for a node that died (measured: a member killed during training left the leader's GBM retrying its
  RPC "Connection refused" for good);
- the members lend their JVM: each waits until the leader puts DONE_KEY in H2O's store, which it reads through its
  own node's REST API, then stops its JVM and exits 0. A member whose leader stops answering first fails (H2O does
  not notice: measured, the member's node still reported a healthy cluster of 2 twenty seconds after the leader's
  JVM was killed);
- the leader, once the members have left (or after MEMBERS_LEAVE_SECONDS, then shutting the cluster down through its
  REST API), stops its own JVM.

An instance that never joins fails the others after the join timeout (H2O_GBM_TRAINER_JOIN_TIMEOUT_SECONDS, default
300 s), naming it. Every instance checks the hyperparameters and its channels before starting its JVM, so bad input
fails all of them at once, with the same reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import h2o

from . import interruption
from .cluster import LocalH2O, NodeNetwork, jvm_exit_reason
from .environment import JOIN_TIMEOUT_ENV, Environment
from .errors import TrainingError, TrainingInputError

logger = logging.getLogger(__name__)

DONE_KEY = "h2o_gbm_trainer_leader_done"
"""The key the leader assigns in H2O's store once it has written the model: the members' signal to leave."""
SINGLE_HOST = "algo-1"
FORMATION_POLL_SECONDS = 0.05
MEMBER_POLL_SECONDS = 0.1
WATCH_POLL_SECONDS = 0.25
LOSS_SECONDS = 2.0
"""A node whose REST port refuses connections (or times out) this long is gone."""
PROBE_TIMEOUT_SECONDS = 0.5
REST_TIMEOUT_SECONDS = 2.0
RESOLVE_RETRY_SECONDS = 0.5
MEMBERS_LEAVE_SECONDS = 10.0
"""How long the leader waits, after signalling, for the members to stop their JVMs before it shuts the cluster down."""


@dataclass(frozen=True)
class Hosts:
    """The job's instances as resourceconfig.json names them, sorted: the first is the leader."""

    current: str
    names: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.names)

    @property
    def leader(self) -> str:
        return self.names[0]

    @property
    def is_leader(self) -> bool:
        return self.current == self.leader

    def index(self, name: str) -> int:
        return self.names.index(name)


def read_hosts(env: Environment) -> Hosts:
    """The hosts of resourceconfig.json (SageMaker writes it for every job); without the file, one host."""
    path = env.resource_config_file
    if not path.is_file():
        return Hosts(SINGLE_HOST, (SINGLE_HOST,))
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise TrainingError(f"input/config/resourceconfig.json is not valid JSON: {error}") from None
    hosts = config.get("hosts") if isinstance(config, dict) else None
    current = config.get("current_host") if isinstance(config, dict) else None
    if (
        not isinstance(hosts, list)
        or not hosts
        or not all(isinstance(name, str) and name for name in hosts)
        or len(set(hosts)) < len(hosts)
    ):
        raise TrainingError(
            f"input/config/resourceconfig.json: hosts must be a list of distinct host names, got {hosts!r}"
        )
    if not isinstance(current, str) or current not in hosts:
        raise TrainingError(
            f"input/config/resourceconfig.json: current_host {current!r} is not one of the hosts {hosts}"
        )
    return Hosts(current, tuple(sorted(hosts)))


def cluster_name(job_name: str | None, hosts: Hosts) -> str:
    """The same on every instance of a job, and another for another job (or another set of hosts)."""
    digest = hashlib.sha256("\n".join([job_name or "", *hosts.names]).encode()).hexdigest()[:16]
    return f"h2o-gbm-trainer-{digest}"


@dataclass(frozen=True)
class Node:
    host: str
    ip: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"


@dataclass(frozen=True)
class ClusterPlan:
    hosts: Hosts
    name: str
    nodes: tuple[Node, ...]
    """One per host, in the hosts' sorted order: the leader first."""

    @property
    def me(self) -> Node:
        return self.nodes[self.hosts.index(self.hosts.current)]

    @property
    def leader(self) -> Node:
        return self.nodes[0]

    @property
    def members(self) -> tuple[Node, ...]:
        return self.nodes[1:]

    def network(self) -> NodeNetwork:
        me = self.me
        return NodeNetwork(me.ip, me.port, self.name, tuple(node.address for node in self.nodes))

    def describe(self) -> str:
        return ", ".join(
            f"{node.host} at {node.address}{' (leader)' if node is self.leader else ''}"
            for node in self.nodes
        )


def host_port(base_port: int, index: int) -> int:
    """Host `index`'s REST port; H2O's internal traffic takes the next one."""
    return base_port + 2 * index


def _resolve(name: str) -> str:
    return str(socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)[0][4][0])


def plan_cluster(
    hosts: Hosts, job_name: str | None, base_port: int, started: float, timeout_seconds: float
) -> ClusterPlan:
    """Every host's address and port. A host name may resolve only once its instance is up (SageMaker's DNS):
    each is tried again until the join timeout, counted from `started` (monotonic)."""
    if host_port(base_port, hosts.count) > 65536:
        raise TrainingInputError(
            f"{hosts.count} instances need ports {base_port} to {host_port(base_port, hosts.count) - 1}: "
            "set a lower H2O_GBM_TRAINER_CLUSTER_PORT"
        )
    addresses: dict[str, str] = {}
    while True:
        failures = {}
        for name in hosts.names:
            if name in addresses:
                continue
            try:
                addresses[name] = _resolve(name)
            except OSError as error:
                failures[name] = error
        if not failures:
            break
        elapsed = time.monotonic() - started
        if elapsed > timeout_seconds:
            name, failure = next(iter(failures.items()))
            raise TrainingError(
                f"H2O cluster not formed after {elapsed:.0f} s: the host name {name} of resourceconfig.json "
                f"does not resolve ({failure}); {JOIN_TIMEOUT_ENV} sets how long the instances wait"
            )
        interruption.check()
        time.sleep(RESOLVE_RETRY_SECONDS)
    nodes = tuple(
        Node(name, addresses[name], host_port(base_port, index)) for index, name in enumerate(hosts.names)
    )
    return ClusterPlan(hosts, cluster_name(job_name, hosts), nodes)


def _request(url: str, data: dict[str, str] | None = None) -> tuple[int, bytes]:
    """(status, body) of a REST call; (0, b"") when the node does not answer."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=REST_TIMEOUT_SECONDS) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), b""
    except (OSError, ValueError):  # refused, reset, timed out
        return 0, b""


def cloud_status(url: str) -> dict[str, Any] | None:
    status, body = _request(f"{url}/3/Cloud?skip_ticks=true")
    if status != 200:
        return None
    with contextlib.suppress(ValueError):
        document = json.loads(body)
        if isinstance(document, dict):
            return document
    return None


def reachable(node: Node) -> bool:
    """Whether the node's REST port accepts a connection: a stopped JVM's port refuses at once."""
    try:
        with socket.create_connection((node.ip, node.port), timeout=PROBE_TIMEOUT_SECONDS):
            return True
    except OSError:
        return False


def not_formed_reason(plan: ClusterPlan, size: int, joined: set[str], elapsed: float, timeout: float) -> str:
    missing = [node for node in plan.nodes if node.address not in joined and node is not plan.me]
    if not missing:
        return (
            f"the H2O cluster of {plan.hosts.count} instances did not agree on its members after {elapsed:.0f} s "
            f"({plan.describe()})"
        )
    names = ", ".join(f"{node.host} (expected at {node.address})" for node in missing)
    return (
        f"H2O cluster formed with {size} of {plan.hosts.count} instances after {elapsed:.0f} s: {names} never "
        f"joined; {JOIN_TIMEOUT_ENV} sets how long the instances wait for each other (now {timeout:g} s)"
    )


def wait_for_cloud(server: LocalH2O, plan: ClusterPlan, started: float, timeout_seconds: float) -> int:
    """Until this node's cluster has every instance and agrees on it; the cluster's size."""
    size, joined = 1, {plan.me.address}
    while True:
        if server.process is not None and server.process.poll() is not None:
            raise TrainingError(
                f"the H2O JVM of {plan.hosts.current} stopped before the cluster formed: {jvm_exit_reason(server)}"
            )
        status = cloud_status(server.url)
        if status is not None:
            size = int(status.get("cloud_size", 1))
            joined = {str(node.get("ip_port")) for node in status.get("nodes", [])}
            if size == plan.hosts.count and status.get("consensus"):
                return size
        elapsed = time.monotonic() - started
        if elapsed > timeout_seconds:
            raise TrainingError(not_formed_reason(plan, size, joined, elapsed, timeout_seconds))
        interruption.check()
        time.sleep(FORMATION_POLL_SECONDS)


@dataclass
class MemberWatch:
    """The leader's watch on its members while it trains: a member gone for LOSS_SECONDS ends the job (H2O would
    wait for it forever), by calling `on_lost` (which stops the leader's JVM, so whatever h2o-py waits for fails)."""

    members: tuple[Node, ...]
    on_lost: Callable[[], None]
    lost: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        last_seen = {node: time.monotonic() for node in self.members}
        while not self._stop.wait(WATCH_POLL_SECONDS):
            for node in self.members:
                now = time.monotonic()
                if reachable(node):
                    last_seen[node] = now
                elif now - last_seen[node] >= LOSS_SECONDS and not self._stop.is_set():
                    self.lost = (
                        f"the H2O cluster lost {node.host} ({node.address}) while the leader trained: its H2O node "
                        f"stopped answering; {node.host}'s log says why"
                    )
                    logger.error("%s", self.lost)
                    self.on_lost()
                    return

    def stop(self) -> None:
        self._stop.set()


@contextlib.contextmanager
def watching_members(plan: ClusterPlan, server: LocalH2O) -> Iterator[MemberWatch]:
    """Run the block under a MemberWatch; whatever fails in it after a member was lost fails with that reason."""

    def stop_own_jvm() -> None:
        if server.process is not None:
            server.process.kill()

    watch = MemberWatch(plan.members, stop_own_jvm)
    thread = threading.Thread(target=watch.run, name="h2o-member-watch", daemon=True)
    thread.start()
    try:
        yield watch
    except Exception:
        if watch.lost:
            raise TrainingError(watch.lost) from None
        raise
    finally:
        watch.stop()
        thread.join()
    if watch.lost:  # lost after the block's last call to H2O
        raise TrainingError(watch.lost)


def finish_as_leader(server: LocalH2O, plan: ClusterPlan) -> None:
    """Signal the members that the job is done, wait for them to leave, and shut down any that stays."""
    # h2o-py's session ends now, while every node is there: ending it removes the session's temporary keys, which
    # could wait for ever on a node that has left.
    with contextlib.suppress(Exception):
        h2o.connection().close()
    status, _ = _request(f"{server.url}/99/Rapids", {"ast": f"(assign {DONE_KEY} (seq_len 1))"})
    if status != 200:
        raise TrainingError(
            f"cannot tell the other instances that training is done: H2O answered {status or 'nothing'}"
        )
    deadline = time.monotonic() + MEMBERS_LEAVE_SECONDS
    remaining = list(plan.members)
    while remaining and time.monotonic() < deadline:
        remaining = [node for node in remaining if reachable(node)]
        if remaining:
            time.sleep(MEMBER_POLL_SECONDS)
    if remaining:
        logger.warning(
            "%s still in the H2O cluster %.0f s after the leader finished: shutting the cluster down",
            ", ".join(node.host for node in remaining),
            MEMBERS_LEAVE_SECONDS,
        )
        _request(f"{server.url}/3/Shutdown", {})
    else:
        logger.info("every member left the H2O cluster")


def serve_as_member(server: LocalH2O, plan: ClusterPlan) -> None:
    """Lend this node to the leader until it signals that the job is done; fail if it goes without signalling."""
    leader = plan.leader
    unreachable_since: float | None = None
    while True:
        interruption.check()
        if server.process is not None and server.process.poll() is not None:
            raise TrainingError(
                f"the H2O JVM of {plan.hosts.current} stopped before the leader {leader.host} finished: "
                f"{jvm_exit_reason(server)}"
            )
        if reachable(leader):
            unreachable_since = None
            status, _ = _request(f"{server.url}/3/Frames/{DONE_KEY}/light")
            if status == 200:
                return
        else:
            now = time.monotonic()
            unreachable_since = unreachable_since or now
            if now - unreachable_since >= LOSS_SECONDS:
                raise TrainingError(
                    f"the H2O cluster's leader {leader.host} ({leader.address}) stopped answering before it "
                    f"finished training; {leader.host}'s log says why"
                )
        time.sleep(MEMBER_POLL_SECONDS)
