"""What `strata serve` exposes on this machine besides its HTTP port: the router ↔ worker
ipc socket sits in a directory only its user can enter (whatever the umask), and an mpirun
group runs in a network namespace of its own holding only loopback, so neither mpirun
(whose out-of-band listener binds every interface whatever Open MPI 4.1 is told) nor a rank
listens on any of the machine's networks."""
from __future__ import annotations

import os
import socket
import stat
import struct
import subprocess
from pathlib import Path

import httpx

from conftest import BIN, free_port, kill_group, skip_or_fail, spawn, wait_for


def descendants(pid: int) -> list[int]:
    parents = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = entry.read_text()
        except OSError:
            continue
        parents[int(entry.parent.name)] = int(text[text.rindex(")") + 2:].split()[1])
    found, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, parent in parents.items() if parent == p]
        found += kids
        frontier += kids
    return found


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").glob("*"):
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:["):-1]))
    return inodes


def listening_addresses(pids: list[int]) -> list[str]:
    """Local addresses of the TCP sockets in LISTEN state that `pids` hold (IPv4 and IPv6)."""
    inodes = set().union(*(socket_inodes(p) for p in pids))
    found = []
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or int(fields[9]) not in inodes:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(fields[1].split(":")[0])
            # The kernel prints each 32-bit word in host (little-endian) order.
            words = b"".join(struct.pack(">I", struct.unpack("<I", raw[i:i + 4])[0]) for i in range(0, len(raw), 4))
            found.append(socket.inet_ntop(family, words))
    return found


def serve(*flags: str):
    port = free_port()
    p = spawn([str(BIN / "strata"), "serve", "--model", "builtin:tiny", "--port", str(port), *flags],
              f"private-{port}")
    wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200, 60,
             "strata serve to be ready")
    p.strata_url = f"http://127.0.0.1:{port}"
    return p


def test_the_ipc_socket_is_in_a_directory_only_its_user_can_enter():
    old = os.umask(0)  # the worst umask: the directory must not depend on it
    try:
        p = serve()
    finally:
        os.umask(old)
    try:
        (router,) = [c for c in descendants(p.pid) if Path(f"/proc/{c}/comm").read_text().strip() == "strata-router"]
        argv = Path(f"/proc/{router}/cmdline").read_bytes().split(b"\0")
        endpoint = argv[argv.index(b"--zmq-endpoint") + 1].decode()
        assert endpoint.startswith("ipc://"), endpoint
        directory = Path(endpoint[len("ipc://"):]).parent
        info = directory.stat()
        assert stat.S_IMODE(info.st_mode) == 0o700, oct(info.st_mode)
        assert info.st_uid == os.getuid()
    finally:
        kill_group(p)
    assert not directory.exists(), "the private directory was left behind"


def user_namespaces_available() -> bool:
    return subprocess.run(["unshare", "--user", "--map-root-user", "--net", "true"],
                          capture_output=True).returncode == 0


def test_an_mpirun_group_listens_on_none_of_the_machines_networks():
    if not user_namespaces_available():
        skip_or_fail("this system refuses user namespaces (unshare --user --net): strata serve then runs "
                     "mpirun in the machine's network")
    p = serve("--tp", "2", "--threads", "1")
    try:
        procs = {c: Path(f"/proc/{c}/comm").read_text().strip() for c in descendants(p.pid)}
        ranks = [c for c, comm in procs.items() if comm == "strata-worker"]
        (mpirun,) = [c for c, comm in procs.items() if comm == "mpirun"]
        assert len(ranks) == 2, procs
        # Nothing of the group listens in this machine's network namespace ...
        assert listening_addresses([mpirun, *ranks]) == []
        ours = os.readlink("/proc/self/ns/net")
        for pid in (mpirun, *ranks):
            assert os.readlink(f"/proc/{pid}/ns/net") != ours, f"pid {pid} shares the machine's network"
        # ... and theirs has loopback alone, where mpirun's own listeners are.
        devices = [line.split(":")[0].strip() for line in Path(f"/proc/{mpirun}/net/dev").read_text().splitlines()[2:]]
        assert devices == ["lo"], devices
        # The group serves through the ipc socket all the same.
        r = httpx.post(f"{p.strata_url}/v1/completions", json={"prompt": "hi", "max_tokens": 3}, timeout=30)
        assert r.status_code == 200, r.text
    finally:
        kill_group(p)
