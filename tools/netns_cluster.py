#!/usr/bin/env python3
"""A small "cluster" of hosts on one Linux machine, made of network namespaces, for running
strata across hosts without hosts: each host is a namespace with its own `eth0` and address
on a private bridge, which sits in a namespace of its own, so no traffic reaches the
machine's own network. Open MPI reaches the hosts through `tools/netns_rsh.sh`, an
`plm_rsh_agent` that stands in for ssh by entering the host's namespace.

Needs root (`ip netns`). Used by tests/deploy/test_multihost.py and
tools/bench_multihost.py; by hand:

    sudo tools/netns_cluster.py up --hosts 3      # prints the hosts' names and addresses
    sudo ip netns exec strata-h1 ip addr          # a shell "on" host 1: ip netns exec strata-h1 bash
    sudo tools/netns_cluster.py down
"""
from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

RSH_AGENT = Path(__file__).resolve().parent / "netns_rsh.sh"
ETC_NETNS = Path("/etc/netns")
CLONE_NEWNET = 0x40000000


@dataclass(frozen=True)
class Host:
    namespace: str
    address: str


def ip(*args: str, namespace: str | None = None) -> None:
    cmd = ["ip", *(["-n", namespace] if namespace else []), *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed: {done.stderr.strip()}")


def namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def processes(namespace: str) -> list[tuple[int, str, int]]:
    """(pid, name, uid) of every process whose network namespace is `namespace`."""
    out = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True).stdout
    found = []
    for pid in out.split():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:  # ended since
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        found.append((int(pid), fields["Name"].strip(), int(fields["Uid"].split()[0])))
    return found


class NetnsCluster:
    """Hosts `{prefix}-h0 … h{n-1}` at 10.99.0.1 … on the bridge in `{prefix}-switch`."""

    def __init__(self, prefix: str, num_hosts: int, subnet: str = "10.99.0"):
        self.prefix = prefix
        self.switch = f"{prefix}-switch"
        self.hosts = [Host(f"{prefix}-h{i}", f"{subnet}.{i + 1}") for i in range(num_hosts)]
        self.cidr = f"{subnet}.0/24"

    def up(self) -> "NetnsCluster":
        self.down()  # what an earlier run that was killed left behind
        try:
            self._build()
        except BaseException:
            self.down()
            raise
        return self

    def _build(self) -> None:
        ip("netns", "add", self.switch)
        ip("link", "add", "br0", "type", "bridge", namespace=self.switch)
        ip("link", "set", "br0", "up", namespace=self.switch)
        for i, host in enumerate(self.hosts):
            ip("netns", "add", host.namespace)
            # Both ends are born in their namespaces: nothing appears in the machine's own.
            ip("link", "add", "eth0", "netns", host.namespace, "type", "veth",
               "peer", "name", f"port{i}", "netns", self.switch)
            ip("link", "set", f"port{i}", "master", "br0", "up", namespace=self.switch)
            ip("addr", "add", f"{host.address}/24", "dev", "eth0", namespace=host.namespace)
            ip("link", "set", "eth0", "up", namespace=host.namespace)
            ip("link", "set", "lo", "up", namespace=host.namespace)

    def kill_processes(self, host: Host, sig: int = signal.SIGKILL) -> list[int]:
        """Signals every process inside `host`'s namespace (a host going down); their pids."""
        pids = [pid for pid, _, _ in processes(host.namespace)]
        for pid in pids:
            if pid == os.getpid():  # a caller whose main thread lives in the namespace
                continue
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return pids

    def down(self) -> None:
        mine = [n for n in namespaces() if n == self.switch or n.startswith(f"{self.prefix}-h")]
        for name in mine:
            self.kill_processes(Host(name, ""))
        for name in mine:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        for etc in ETC_NETNS.glob(f"{self.prefix}-h*"):
            shutil.rmtree(etc, ignore_errors=True)

    def etc_file(self, host: Host, name: str, text: str) -> None:
        """A file that replaces /etc/`name` for what runs in `host` (`ip netns exec` mounts
        /etc/netns/NAMESPACE/* over /etc): the host's own /etc/hosts, /etc/passwd, ..."""
        directory = ETC_NETNS / host.namespace
        directory.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)

    def exec_prefix(self, host: Host) -> list[str]:
        return ["ip", "netns", "exec", host.namespace]

    def mpirun_env(self) -> dict[str, str]:
        """Environment that makes Open MPI launch on these hosts through the namespace agent."""
        return {"OMPI_MCA_plm_rsh_agent": str(RSH_AGENT),
                "STRATA_NETNS_HOSTS": ",".join(f"{h.address}={h.namespace}" for h in self.hosts),
                # Each daemon is started by mpirun itself, not by another daemon: the agent's
                # host map lives in mpirun's environment.
                "OMPI_MCA_plm_rsh_no_tree_spawn": "1"}

    def hostfile(self, path: Path, hosts: list[Host], slots: int = 1) -> Path:
        path.write_text("".join(f"{h.address} slots={slots}\n" for h in hosts))
        return path


def remove_orphans(stem: str) -> None:
    """Removes the clusters `{stem}{pid}` whose process `pid` is gone: what a run that was
    killed (a CTest timeout, SIGKILL) left behind, where its own cleanup never ran."""
    for name in namespaces():
        pid = name[len(stem):].split("-")[0]
        if name.startswith(stem) and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            NetnsCluster(f"{stem}{pid}", 0).down()


def enter_namespace(name: str) -> None:
    """Moves the calling thread (only) into network namespace `name`: sockets it opens from
    then on live there. Used as a thread-pool initializer for clients "on" a host."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {name}")
    finally:
        os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--prefix", default="strata")
    args = parser.parse_args()
    cluster = NetnsCluster(args.prefix, args.hosts)
    if args.action == "down":
        cluster.down()
        return
    cluster.up()
    for host in cluster.hosts:
        print(f"{host.namespace} {host.address}")
    print(f"rsh agent: export {' '.join(f'{k}={v}' for k, v in cluster.mpirun_env().items())}")


if __name__ == "__main__":
    main()
