"""A worker group across hosts, where the hosts are Linux network namespaces on one machine
(tools/netns_cluster.py): each has its own eth0 and address on a private bridge, so the
only way between them is TCP over that bridge, exactly as between machines.

    h0 10.99.0.1  strata-router; the head host where deploy/launch-worker-group.sh runs mpirun
    h1 10.99.0.2  rank 0 of group g0 (TP=2)        h2 10.99.0.3  rank 1 of group g0
    h3 10.99.0.4  group g1 (one rank) and the HTTP client
    h4 10.99.0.5  a LeaderWorkerSet group's leader pod    h5 10.99.0.6  its worker pod

mpirun is started by the same `deploy/launch-worker-group.sh --hostfile` a user runs on
bare hosts; its `plm_rsh_agent` is tools/netns_rsh.sh, which enters a host's namespace
where ssh would log into it. The last test runs a Kubernetes LeaderWorkerSet group's pod
scripts as they run in the image: as uid 1000, under the pods' DNS names and hostnames,
deploy/docker/worker-entrypoint.sh's sshd in the worker pod and deploy/docker/lws-launch.sh
in the leader, whose mpirun logs in over real ssh. The test removes its namespaces, and
every process inside them, even when it fails.

Ports that must be open between hosts (asserted below against every connection the
cluster makes while serving):
  - clients → router:          HTTP --port (8000)
  - every rank → router:       ZeroMQ --zmq-endpoint (5557)
  - head host → rank hosts:    ssh (22), which starts Open MPI's daemon on each host
  - daemons ↔ mpirun:          Open MPI out-of-band TCP, pinned by --mpi-port-base (30000)
  - rank ↔ rank:               Open MPI TCP transport (all-reduce, pipeline sends),
                               --mpi-port-base + 1 … + 100
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
import tempfile
from pathlib import Path

import httpx
import pytest

from conftest import AIDREAMS, BIN, SOURCE_DIR, kill_group, require_file, skip_or_fail, spawn, wait_for

sys.path.insert(0, str(SOURCE_DIR / "tools"))
from netns_cluster import NetnsCluster, enter_namespace, processes, remove_orphans  # noqa: E402

MODEL = str(AIDREAMS)  # a real vocabulary: every generated id has a piece of its own
HEARTBEAT_TIMEOUT_MS = 1500
HTTP_PORT, ZMQ_PORT, MPI_PORT_BASE = 8000, 5557, 30000
MPI_PORTS = range(MPI_PORT_BASE, MPI_PORT_BASE + 101)


def require_root_and_namespaces() -> None:
    missing = ("not root" if os.geteuid() != 0 else
               "no `ip` (iproute2)" if not shutil.which("ip") else
               "no `ss` (iproute2)" if not shutil.which("ss") else
               "no mpirun" if not shutil.which("mpirun") else "")
    if missing:
        skip_or_fail(f"the multi-host test builds network namespaces and needs root, iproute2 and Open MPI: {missing}")


class Client:
    """HTTP from inside a host's namespace: the pool's threads enter it before any request."""

    def __init__(self, namespace: str, base: str):
        self.base = base
        self.pool = ThreadPoolExecutor(max_workers=6, initializer=enter_namespace, initargs=(namespace,))

    def call(self, method: str, path: str, timeout: float = 30, **kwargs) -> httpx.Response:
        return self.pool.submit(httpx.request, method, self.base + path, timeout=timeout, **kwargs).result()

    def groups(self) -> dict:
        return {g["id"]: g for g in self.call("GET", "/health", timeout=5).json()["groups"]}


class Cluster:
    """The running deployment: router on h0, group g0 across h1+h2, later g1 on h3."""

    def __init__(self, tmp: Path):
        remove_orphans("stmh")
        self.net = NetnsCluster(f"stmh{os.getpid()}", 6).up()
        self.h0, self.h1, self.h2, self.h3, self.leader_pod, self.worker_pod = self.net.hosts
        self.key = tmp / "transport.key"
        try:
            subprocess.run([str(BIN / "strata"), "keygen", str(self.key)], check=True, capture_output=True)
        except BaseException:
            self.net.down()
            raise
        self.router_endpoint = f"tcp://{self.h0.address}:{ZMQ_PORT}"
        self.processes: dict[str, subprocess.Popen] = {}
        self.client = Client(self.h3.namespace, f"http://{self.h0.address}:{HTTP_PORT}")
        self.hostfile = self.net.hostfile(tmp / "hostfile", [self.h1, self.h2])

    def start_router(self) -> None:
        self.processes["router"] = spawn(
            self.net.exec_prefix(self.h0) +
            [str(BIN / "strata-router"), "--host", self.h0.address, "--port", str(HTTP_PORT),
             "--zmq-endpoint", self.router_endpoint, "--transport-key-file", str(self.key), "--model", MODEL,
             "--heartbeat-timeout-ms", str(HEARTBEAT_TIMEOUT_MS)], "multihost-router")

    def start_g0(self) -> None:
        # The bare-host launcher, run on the head host; only the agent differs from ssh.
        self.processes["g0"] = spawn(
            self.net.exec_prefix(self.h0) +
            ["bash", str(SOURCE_DIR / "deploy" / "launch-worker-group.sh"), "--hostfile", str(self.hostfile),
             "--tp", "2", "--router", self.router_endpoint, "--model", MODEL, "--group-id", "g0",
             "--threads", "1", "--transport-key-file", str(self.key), "--strata-worker", str(BIN / "strata-worker"),
             "--mpi-interface", self.net.cidr, "--mpi-port-base", str(MPI_PORT_BASE),
             # Shared memory is never a path between hosts; this makes sure of it here.
             "--mpirun-arg", "--mca", "--mpirun-arg", "btl", "--mpirun-arg", "tcp,self",
             "--", "--kv-cache-mb", "64"], "multihost-g0", self.net.mpirun_env())

    def start_g1(self) -> None:
        self.processes["g1"] = spawn(
            self.net.exec_prefix(self.h3) +
            [str(BIN / "strata-worker"), "--group-id", "g1", "--router", self.router_endpoint, "--model", MODEL,
             "--threads", "1", "--transport-key-file", str(self.key), "--kv-cache-mb", "64"], "multihost-g1")

    def wait_ready(self, ids: set[str]) -> None:
        wait_for(lambda: {i for i, g in self.client.groups().items() if g["alive"] and g["ready"]} >= ids,
                 90, f"groups {sorted(ids)} ready")

    def stop(self) -> None:
        for process in self.processes.values():
            kill_group(process)
        self.client.pool.shutdown(wait=False, cancel_futures=True)
        self.net.down()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    require_root_and_namespaces()
    require_file(AIDREAMS)
    running = Cluster(tmp_path_factory.mktemp("multihost"))
    try:
        running.start_router()
        running.start_g0()
        running.wait_ready({"g0"})
        yield running
    finally:
        running.stop()


def process_names(namespace: str) -> list[str]:
    return [name for _, name, _ in processes(namespace)]


def assert_greedy_ids_equal_one_rank(client: Client) -> None:
    for prompt in ["Echoes of", "A gentle hum", "Contrast"]:
        reference = subprocess.run([str(BIN / "strata"), "generate", "--model", MODEL, "--prompt", prompt,
                                    "--temperature", "0", "--max-tokens", "40", "--output-ids"],
                                   capture_output=True, text=True, timeout=60, check=True).stdout
        want_ids = [int(t) for t in reference.split()]
        r = client.call("POST", "/v1/completions",
                        json={"prompt": prompt, "max_tokens": 40, "temperature": 0, "logprobs": 0})
        assert r.status_code == 200, r.text
        choice = r.json()["choices"][0]
        # Each reference id's own piece, from the router's detokenizer, against the tokens served.
        want_pieces = [client.call("POST", "/detokenize", json={"tokens": [i]}).json()["prompt"] for i in want_ids]
        assert choice["logprobs"]["tokens"] == want_pieces, prompt
        assert r.json()["usage"]["completion_tokens"] == len(want_ids)


def test_the_group_spans_two_hosts_and_its_greedy_ids_equal_one_rank(cluster):
    assert "strata-worker" in process_names(cluster.h1.namespace)
    assert "strata-worker" in process_names(cluster.h2.namespace)
    assert_greedy_ids_equal_one_rank(cluster.client)


def connections_between_hosts(net: NetnsCluster) -> list[tuple[str, int, str, int]]:
    """(local address, port, peer address, port) of every established TCP connection
    between two different hosts of the cluster, seen from each host."""
    addresses = {h.address for h in net.hosts}
    found = []
    for host in net.hosts:
        out = subprocess.run(net.exec_prefix(host) + ["ss", "-Htn", "state", "established"],
                             capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            local, peer = line.split()[-2:]
            (la, lp), (pa, pp) = local.rsplit(":", 1), peer.rsplit(":", 1)
            if la in addresses and pa in addresses and la != pa:
                found.append((la, int(lp), pa, int(pp)))
    return found


def test_hosts_talk_only_over_the_documented_ports(cluster):
    r = cluster.client.call("POST", "/v1/completions", json={"prompt": "ports", "max_tokens": 32})
    assert r.status_code == 200, r.text
    connections = connections_between_hosts(cluster.net)
    allowed = {HTTP_PORT, ZMQ_PORT, *MPI_PORTS}
    strays = [c for c in connections if c[1] not in allowed and c[3] not in allowed]
    assert not strays, f"connections outside the documented ports: {strays}"
    ranks = {cluster.h1.address, cluster.h2.address}
    rank_to_rank = [c for c in connections if {c[0], c[2]} == ranks]
    assert rank_to_rank, "the two ranks exchange nothing over TCP: the all-reduce did not cross hosts"
    assert all(c[1] in MPI_PORTS or c[3] in MPI_PORTS for c in rank_to_rank), rank_to_rank


def serve_until(client: Client, stop: threading.Event, outcomes: list) -> None:
    while not stop.is_set():
        r = client.call("POST", "/v1/completions", timeout=60,
                        json={"prompt": "b", "max_tokens": 100, "ignore_eos": True})
        outcomes.append((time.monotonic(), r.status_code, "" if r.status_code == 200 else r.json()["error"]["message"]))


def test_killing_a_rank_host_fails_its_group_and_the_other_group_serves(cluster):
    cluster.start_g1()
    cluster.wait_ready({"g0", "g1"})
    stop, outcomes = threading.Event(), []
    clients = [threading.Thread(target=serve_until, args=(cluster.client, stop, outcomes)) for _ in range(3)]
    for t in clients:
        t.start()
    try:
        wait_for(lambda: len(outcomes) >= 3, 60, "requests served by both groups")
        killed_at = time.monotonic()
        assert cluster.net.kill_processes(cluster.h2), "nothing ran on h2"
        wait_for(lambda: not cluster.client.groups()["g0"]["alive"], HEARTBEAT_TIMEOUT_MS / 1000 + 1,
                 "the router to mark g0 dead")
        marked_dead_after = time.monotonic() - killed_at
        time.sleep(1.5)  # keep serving from g1 alone for a while
    finally:
        stop.set()
        for t in clients:
            t.join(timeout=90)
    assert not any(t.is_alive() for t in clients), "a request hung"
    print(f"g0 marked dead {marked_dead_after:.2f} s after its h2 rank was killed")
    errors = [message for _, status, message in outcomes if status != 200]
    assert all("retry" in m for m in errors), errors
    later = [status for at, status, _ in outcomes if at > killed_at + marked_dead_after]
    assert later and all(s == 200 for s in later), outcomes
    # The dead group's mpirun ends, taking rank 0 on h1 with it: nothing is left hanging.
    cluster.processes["g0"].wait(timeout=30)
    wait_for(lambda: "strata-worker" not in process_names(cluster.h1.namespace), 30,
             "rank 0 on h1 to end")
    # With no group left the router says so at once (503), rather than queueing forever.
    cluster.net.kill_processes(cluster.h3)
    wait_for(lambda: cluster.client.call("GET", "/ready", timeout=5).status_code == 503,
             HEARTBEAT_TIMEOUT_MS / 1000 + 1, "/ready to answer 503")
    r = cluster.client.call("POST", "/v1/completions", json={"prompt": "x", "max_tokens": 4})
    assert r.status_code == 503 and "error" in r.json(), r.text


SSHD_ROOT = Path(os.environ.get("STRATA_TEST_SSHD_ROOT", Path.home() / ".cache" / "strata-test-sshd"))
POD_UID = 1000  # the images' user `strata`
LWS_LEADER = "strata-worker-0.strata-worker.default"  # LWS: NAME-GROUP.SUBDOMAIN.NAMESPACE
LWS_WORKER = "strata-worker-0-1.strata-worker.default"  # and NAME-GROUP-INDEX for worker 1


class LwsPods:
    """One LeaderWorkerSet group of two pods (TP=2) on hosts h4 and h5, as the image runs it."""

    def __init__(self, cluster: Cluster):
        self.cluster, self.net = cluster, cluster.net
        # Files uid 1000 reads: the pods' Secrets. pytest's tmp_path is root's alone (0700).
        self.dir = Path(tempfile.mkdtemp(prefix="strata-lws-"))
        os.chown(self.dir, POD_UID, POD_UID)  # the pods write their sshd's files in it too
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.dir / "id_ed25519")], check=True)
        (self.dir / "authorized_keys").write_bytes((self.dir / "id_ed25519.pub").read_bytes())
        (self.dir / "transport.key").write_bytes(cluster.key.read_bytes())
        for path in self.dir.iterdir():
            os.chown(path, POD_UID, POD_UID)
            path.chmod(0o600)
        # sshd and its library, where uid 1000 may run them ($HOME may be root's alone).
        shutil.copytree(SSHD_ROOT / "usr", self.dir / "sshd-root", symlinks=True)
        hosts = (f"127.0.0.1 localhost\n{cluster.leader_pod.address} {LWS_LEADER} {LWS_LEADER.split('.')[0]}\n"
                 f"{cluster.worker_pod.address} {LWS_WORKER} {LWS_WORKER.split('.')[0]}\n")
        for pod in (cluster.leader_pod, cluster.worker_pod):  # the pod's DNS names and its user
            self.net.etc_file(pod, "hosts", hosts)
            self.net.etc_file(pod, "passwd", f"root:x:0:0:root:/root:/bin/sh\nstrata:x:{POD_UID}:{POD_UID}::/tmp:/bin/sh\n")
            self.net.etc_file(pod, "group", f"root:x:0:\nstrata:x:{POD_UID}:\n")

    def run(self, pod, hostname: str, env: dict, argv: list[str], log: str) -> subprocess.Popen:
        """`argv` in `pod`'s namespace, with its own hostname, as uid 1000 with only `env`."""
        assignments = [f"{k}={v}" for k, v in {"HOME": "/tmp", "PATH": os.environ["PATH"], **env}.items()]
        return spawn(self.net.exec_prefix(pod) +
                     ["unshare", "--uts", "sh", "-c", f'hostname {hostname} && exec "$@"', "pod",
                      "setpriv", f"--reuid={POD_UID}", f"--regid={POD_UID}", "--clear-groups",
                      "env", "-i", *assignments, *argv], log)

    def start_worker_pod(self) -> subprocess.Popen:
        return self.run(self.cluster.worker_pod, LWS_WORKER.split(".")[0],
                        {"STRATA_SSH_AUTHORIZED_KEYS": self.dir / "authorized_keys",
                         "STRATA_SSHD": self.dir / "sshd-root/sbin/sshd", "STRATA_SSHD_DIR": self.dir / "sshd",
                         "LD_LIBRARY_PATH": self.dir / "sshd-root/lib/x86_64-linux-gnu"},
                        [str(SOURCE_DIR / "deploy/docker/worker-entrypoint.sh")], "lws-worker")

    def start_leader_pod(self) -> subprocess.Popen:
        env = {"LWS_LEADER_ADDRESS": LWS_LEADER, "LWS_GROUP_SIZE": 2, "LWS_WORKER_INDEX": 0, "STRATA_TP": 2,
               "STRATA_ROUTER": self.cluster.router_endpoint, "STRATA_MODEL": MODEL,
               "STRATA_TRANSPORT_KEY_FILE": self.dir / "transport.key", "STRATA_SSH_KEY": self.dir / "id_ed25519",
               "STRATA_GROUP_ID": "strata-worker-0", "STRATA_SSH_WAIT_S": 60, "OMP_NUM_THREADS": 1}
        # The arguments deploy/k8s gives the leader container.
        return self.run(self.cluster.leader_pod, LWS_LEADER.split(".")[0], env,
                        [str(SOURCE_DIR / "deploy/docker/lws-launch.sh"), "--mpi-interface", "eth0", "--threads", "1",
                         "--strata-worker", str(BIN / "strata-worker"), "--", "--kv-cache-mb", "64"], "lws-leader")


def uids(namespace: str, name: str) -> set[int]:
    return {uid for _, process, uid in processes(namespace) if process == name}


def test_a_leaderworkerset_group_runs_from_its_pod_scripts_over_ssh(cluster):
    if not (SSHD_ROOT / "usr/sbin/sshd").exists() or not shutil.which("ssh"):
        skip_or_fail(f"no sshd under {SSHD_ROOT} (scripts/install-deps.sh unpacks one there) or no ssh client")
    pods = LwsPods(cluster)
    try:
        worker = pods.start_worker_pod()
        leader = pods.start_leader_pod()
        # After the test before, no other group is alive: this one serves every request.
        cluster.wait_ready({"strata-worker-0"})
        assert uids(cluster.worker_pod.namespace, "strata-worker") == {POD_UID}  # started over ssh
        assert uids(cluster.worker_pod.namespace, "sshd") == {POD_UID}
        assert uids(cluster.leader_pod.namespace, "strata-worker") == {POD_UID}  # rank 0, beside mpirun
        assert_greedy_ids_equal_one_rank(cluster.client)
        # The worker pod fails: the router drops the group, the leader's mpirun ends (LWS
        # would then recreate both pods); a new instance under the same id is taken back.
        cluster.net.kill_processes(cluster.worker_pod)
        wait_for(lambda: not cluster.client.groups()["strata-worker-0"]["alive"], HEARTBEAT_TIMEOUT_MS / 1000 + 1,
                 "the router to mark the group dead")
        leader.wait(timeout=30)
        worker = pods.start_worker_pod()
        leader = pods.start_leader_pod()
        cluster.wait_ready({"strata-worker-0"})
        r = cluster.client.call("POST", "/v1/completions", json={"prompt": "again", "max_tokens": 8})
        assert r.status_code == 200, r.text
    finally:
        cluster.net.kill_processes(cluster.leader_pod)
        cluster.net.kill_processes(cluster.worker_pod)
        shutil.rmtree(pods.dir, ignore_errors=True)
