"""Checks deploy/docker/ without building an image (no registry here).

The Dockerfiles are read with dockerfile-parse, a parser nobody here wrote, and held to the real
build: the scripts CI runs, the targets CMake builds, the binaries' shared libraries (ldd,
readelf, dpkg) and their defaults (`strata-router --help`). The shell scripts are checked with
`bash -n`, and lws-launch.sh's hostfile against the LeaderWorkerSet pod naming.

Environment: STRATA_BINARY_DIR (default <repo>/build). Missing binaries skip what needs them;
CI=true fails instead.
"""
from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "deploy" / "docker"
BINARY_DIR = Path(os.environ.get("STRATA_BINARY_DIR", REPO / "build"))
DOCKERFILES = ("Dockerfile.cpu", "Dockerfile.cuda")
BINARIES = ("strata", "strata-router", "strata-worker")
# Come with every base image; ldd names them, no Dockerfile need install them.
BASE_PACKAGES = {"libc6", "libstdc++6", "libgcc-s1"}
# Libraries strata's CUDA backend loads that nvidia/cuda's -runtime- images ship (a CUDA
# toolkit unpacked from a tarball, as on the CI machine, gives them no Debian package).
CUDA_RUNTIME_LIBS = ("libcudart.so.", "libcublas.so.", "libcublasLt.so.", "libnccl.so.")
MODEL_FILES = ("*.bin", "*.gguf", "*.safetensors")


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]]

    def values(self, instruction: str) -> list[str]:
        return [v for i, v in self.instructions if i == instruction]


@cache
def stages(dockerfile: str) -> list[Stage]:
    with open(DOCKER / dockerfile, "rb") as file:  # a path not named Dockerfile would be a folder
        parser = DockerfileParser(fileobj=file)
        structure, bases = parser.structure, iter(parser.parent_images)  # ARGs substituted
    result = []
    for item in structure:
        if item["instruction"] == "FROM":
            words = [w for w in item["value"].split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(result))
            result.append(Stage(name, next(bases), []))
        elif result:
            result[-1].instructions.append((item["instruction"], item["value"]))
    return result


def copy_args(value: str) -> tuple[dict[str, str], list[str], str]:
    """A COPY's flags (--from=build), sources and destination."""
    words = shlex.split(value)
    flags = dict(w[2:].split("=", 1) for w in words if w.startswith("--"))
    paths = [w for w in words if not w.startswith("--")]
    return flags, paths[:-1], paths[-1]


def build_stage(dockerfile: str) -> Stage:
    *earlier, final = stages(dockerfile)
    names = {copy_args(v)[0].get("from") for v in final.values("COPY")} - {None}
    assert len(names) == 1, f"{dockerfile}: the final stage copies from {names or 'no stage'}, not one build stage"
    matches = [s for s in earlier if s.name in names]
    assert matches, f"{dockerfile}: COPY --from={names} names no earlier stage"
    return matches[0]


def built_copies(dockerfile: str) -> dict[str, str]:
    """Build-stage path → image path of each file the final stage copies from the build stage."""
    copies = {}
    for value in stages(dockerfile)[-1].values("COPY"):
        flags, sources, dest = copy_args(value)
        if "from" in flags:
            copies.update({s: dest + Path(s).name if dest.endswith("/") else dest for s in sources})
    return copies


def runs(stage: Stage) -> str:
    return "\n".join(stage.values("RUN"))


def apt_installed(stage: Stage) -> set[str]:
    words = set()
    for command in re.findall(r"apt-get install([^&;|]*)", runs(stage)):
        words |= {w for w in command.split() if not w.startswith(("-", "$"))}
    return words


def bin_dir() -> Path:
    missing = [b for b in BINARIES if not (BINARY_DIR / "bin" / b).is_file()]
    if missing:
        message = f"{BINARY_DIR / 'bin'} lacks {', '.join(missing)}: build first (scripts/build.sh) or set STRATA_BINARY_DIR"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return BINARY_DIR / "bin"


def run(*command: str | Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)


def cmake_executables() -> set[str]:
    text = (REPO / "tools" / "CMakeLists.txt").read_text()
    names = set(re.findall(r"add_executable\(([\w-]+)\s", text))
    for var, values in re.findall(r"foreach\((\w+) ([\w ]+)\)", text):
        for template in re.findall(r"add_executable\(([\w-]*\$\{%s\}[\w-]*)" % var, text):
            names |= {template.replace("${%s}" % var, v) for v in values.split()}
    return names


def ignored(path: str, dockerfile: str) -> bool:
    """Whether the Dockerfile's .dockerignore keeps `path` (or a folder above it) out of the context."""
    lines = (DOCKER / f"{dockerfile}.dockerignore").read_text().splitlines()
    patterns = [p.strip() for p in lines if p.strip() and not p.startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "this check knows no ! exceptions"
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatchcase(prefix, p) or (p.startswith("**/") and fnmatch.fnmatchcase(prefix, p[3:]))
               for prefix in prefixes for p in patterns)


@cache
def library_packages() -> tuple[dict[str, str | None], set[str]]:
    """Every library the binaries load (ldd) → its package (None: none owns it), and the packages
    of those they name themselves (readelf's NEEDED), both less BASE_PACKAGES."""
    resolved, needed = {}, set()
    for binary in BINARIES:
        path = bin_dir() / binary
        resolved |= dict(re.findall(r"^\s*(\S+) => (/\S+)", run("ldd", path, check=True).stdout, re.M))
        needed |= set(re.findall(r"\(NEEDED\).*\[(.+)\]", run("readelf", "-d", path, check=True).stdout))
    owned = dpkg_owners([p for lib in resolved.values() for p in (os.path.realpath(lib), lib)])
    owners = {s: owned.get(os.path.realpath(lib)) or owned.get(lib) for s, lib in resolved.items()}
    return owners, {owners[s] for s in needed} - BASE_PACKAGES - {None}


def dpkg_owners(paths: list[str]) -> dict[str, str]:
    """Path → the package that owns it, for the paths some package owns (one dpkg -S for all)."""
    lines = run("dpkg", "-S", *paths).stdout.splitlines()  # exit 1: some path has no owner
    pairs = (line.rsplit(": ", 1) for line in lines if ": /" in line)
    return {path: packages.split(",")[0].split(":")[0] for packages, path in pairs}


def depends_closure(packages: set[str]) -> set[str]:
    """The packages apt brings with `packages` (first alternative of each Depends), from this
    machine's dpkg database: the same Debian release as the image (see the base image test)."""
    table = run("dpkg-query", "-W", "-f=${Package}\t${Depends}, ${Pre-Depends}\n", check=True).stdout
    graph = {}
    for line in table.splitlines():
        name, depends = line.split("\t")
        graph[name] = {d.split("|")[0].split()[0].split(":")[0] for d in depends.split(",") if d.strip()}
    seen, todo = set(), list(packages)
    while todo:
        if (package := todo.pop()) not in seen:
            seen.add(package)
            todo.extend(graph.get(package, ()))
    return seen


def os_release(key: str) -> str:
    return dict(re.findall(r'^(\w+)="?([^"\n]*)"?', Path("/etc/os-release").read_text(), re.M))[key]


def ssh_port() -> str:
    ports = {re.search(r"STRATA_SSH_PORT:-(\d+)", (DOCKER / s).read_text())[1]
             for s in ("worker-entrypoint.sh", "lws-launch.sh")}
    assert len(ports) == 1, f"worker-entrypoint.sh and lws-launch.sh disagree on the sshd port: {ports}"
    return ports.pop()


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_build_stage_runs_the_scripts_ci_runs(dockerfile):
    all_stages, build = stages(dockerfile), build_stage(dockerfile)
    assert len(all_stages) >= 2 and all_stages[-1] is not build, f"{dockerfile}: no runtime stage apart from the build"
    assert re.findall(r"\bscripts/[\w.-]+\.sh", runs(build)) == ["scripts/install-deps.sh", "scripts/build.sh"]
    assert "STRATA_SKIP_PYTHON_DEPS=1 bash scripts/install-deps.sh" in runs(build)
    ci = (REPO / "scripts" / "test.sh").read_text()
    assert "bash scripts/install-deps.sh" in ci and "bash scripts/build.sh" in ci
    assert "bash scripts/test.sh" in (REPO / ".ci" / "run").read_text()


def build_flags(dockerfile: str) -> list[str]:
    """The CMake arguments the build stage hands scripts/build.sh."""
    line = re.search(r"bash scripts/build\.sh([^\n&;|]*)", runs(build_stage(dockerfile)))
    assert line, f"{dockerfile}: no `bash scripts/build.sh` in the build stage"
    return shlex.split(line.group(1).replace("\\", " "))


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_build_stage_flags_configure_this_tree(dockerfile, tmp_path):
    # CI builds with the default flags; this configures the image's own, so an option that
    # was renamed or misspelt (CMake only warns: "not used by the project") fails here.
    flags = build_flags(dockerfile)
    if "-DSTRATA_CUDA=ON" in flags and not shutil.which("nvcc") and not Path("/usr/local/cuda/bin/nvcc").exists():
        pytest.skip("no CUDA toolkit here to configure the CUDA image's build with")
    done = subprocess.run(["cmake", "-S", str(REPO), "-B", str(tmp_path), "-DCMAKE_BUILD_TYPE=Release", *flags],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{dockerfile}: cmake {flags} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    assert "not used by the project" not in done.stderr, f"{dockerfile}: {done.stderr}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_context_copies_exist_and_are_not_ignored(dockerfile):
    for stage in stages(dockerfile):
        for value in stage.values("COPY"):
            flags, sources, _ = copy_args(value)
            for source in sources if "from" not in flags else ():
                assert (REPO / source).exists(), f"{dockerfile}: COPY {source}: no such file in the repository"
                assert source == "." or not ignored(source, dockerfile), f"{dockerfile}: COPY {source} is .dockerignored"
    assert ignored("build/CMakeCache.txt", dockerfile), "a host's build tree would reach the image's configure"


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_copies_from_build_are_built_binaries(dockerfile):
    workdir = build_stage(dockerfile).values("WORKDIR")[-1]
    copies, targets = built_copies(dockerfile), cmake_executables()
    for source in copies:
        assert source.startswith(f"{workdir}/build/"), f"{dockerfile}: {source} is not under {workdir}/build/"
    binaries = {Path(s).name: d for s, d in copies.items() if s.startswith(f"{workdir}/build/bin/")}
    assert set(binaries) == set(BINARIES), f"{dockerfile}: copies {sorted(binaries)}, not {BINARIES}"
    assert set(BINARIES) <= targets, f"tools/CMakeLists.txt builds {sorted(targets)}"
    image_bin = {str(Path(d).parent) for d in binaries.values()}
    assert len(image_bin) == 1, "strata serve looks for strata-router and strata-worker beside itself"
    script_dirs = {copy_args(v)[2].rstrip("/") for v in stages(dockerfile)[-1].values("COPY") if "--from" not in v}
    assert script_dirs == image_bin, "lws-launch.sh looks for launch-worker-group.sh and strata-worker beside itself"
    for name in binaries:
        assert (bin_dir() / name).is_file()


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_entrypoint_user_ports(dockerfile):
    final = stages(dockerfile)[-1]
    entrypoint = json.loads(final.values("ENTRYPOINT")[-1])[0]
    assert entrypoint in built_copies(dockerfile).values(), f"{dockerfile}: ENTRYPOINT {entrypoint} is no copied binary"
    user = final.values("USER")[-1].split(":")[0]
    assert user not in ("root", "0"), f"{dockerfile}: runs as root"
    assert re.search(rf"useradd --uid 1000 .*\b{user}$", runs(final), re.M), "deploy/k8s runs the pods as uid 1000"
    help_text = run(bin_dir() / "strata-router", "--help", check=True).stdout
    http, zmq = re.search(r"--port INT=(\d+)", help_text), re.search(r"--zmq-endpoint TEXT=\S+:(\d+)", help_text)
    assert http and zmq, "strata-router --help no longer shows --port INT=N and --zmq-endpoint TEXT=...:N"
    exposed = {p.split("/")[0] for v in final.values("EXPOSE") for p in v.split()}
    assert exposed == {http[1], zmq[1], ssh_port()}


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_no_model_baked_in(dockerfile):
    for stage in stages(dockerfile):
        for value in stage.values("COPY"):
            for source in copy_args(value)[1]:
                assert not any(fnmatch.fnmatch(Path(source).name, m) for m in MODEL_FILES), f"{dockerfile}: COPY {source}"
                assert "models" not in Path(source).parts, f"{dockerfile}: COPY {source}"
    for path in ("m.gguf", "models/llama/model.safetensors", "tests/seeds/tiny.bin", "models/x"):
        assert ignored(path, dockerfile), f"{dockerfile}: `COPY . .` would take {path} into the build"
    volumes = " ".join(stages(dockerfile)[-1].values("VOLUME"))
    assert "/models" in re.findall(r"[\w/]+", volumes), f"{dockerfile}: no VOLUME /models"


def test_cpu_runtime_installs_every_library_package():
    build, runtime = build_stage("Dockerfile.cpu"), stages("Dockerfile.cpu")[-1]
    # The package names are this machine's: the same Debian release, or they may not exist.
    assert build.base == f"debian:{os_release('VERSION_ID')}" and runtime.base == f"debian:{os_release('VERSION_ID')}-slim"
    assert "-DSTRATA_CUDA=OFF" in runs(build), "the CPU image must not pick up a CUDA toolkit"
    owners, direct = library_packages()
    unowned = sorted(s for s, p in owners.items() if p is None)
    assert all(s.startswith(CUDA_RUNTIME_LIBS) for s in unowned), f"no package owns {unowned}"
    installed = apt_installed(runtime)
    assert not direct - installed, f"runtime stage lacks {sorted(direct - installed)} (libraries the binaries link)"
    transitive = set(owners.values()) - {None} - BASE_PACKAGES
    missing = transitive - depends_closure(installed)
    assert not missing, f"runtime stage brings no {sorted(missing)}, which ldd says the binaries load"


def test_runtime_packages_script_agrees():
    result = run(DOCKER / "runtime-packages.sh", *(bin_dir() / b for b in BINARIES), check=True)
    assert set(result.stdout.split()) == library_packages()[1]


def test_cuda_image():
    build, runtime = build_stage("Dockerfile.cuda"), stages("Dockerfile.cuda")[-1]
    devel = re.fullmatch(r"nvidia/cuda:(12\.\d+\.\d+)-devel-(ubuntu\d+\.\d+)", build.base)
    assert devel, f"build stage base {build.base} is no CUDA 12 devel image"
    assert runtime.base == f"nvidia/cuda:{devel[1]}-runtime-{devel[2]}", "devel and runtime must match"
    build_line = next(line for line in runs(build).splitlines() if "scripts/build.sh" in line)
    assert "-DSTRATA_CUDA=ON" in build_line
    assert "libnccl-dev" in runs(build) and "libnccl2" in runs(runtime)
    # The runtime stage installs what runtime-packages.sh found in the binaries it copies.
    listing = next(s for s in built_copies("Dockerfile.cuda") if s.endswith("runtime-packages.txt"))
    derive = next(line for line in runs(build).splitlines() if "runtime-packages.sh" in line)
    assert all(f"build/bin/{b}" in derive for b in BINARIES) and Path(listing).name in runs(build)
    assert built_copies("Dockerfile.cuda")[listing] in runs(runtime)


@pytest.mark.parametrize("script", sorted((REPO / "deploy").rglob("*.sh")), ids=lambda p: p.name)
def test_shell_syntax(script):
    result = run("bash", "-n", script)
    assert result.returncode == 0, result.stderr


def lws_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LWS_", "STRATA_"))}
    return env | extra


@pytest.mark.parametrize("slots", ["1", "2"])
def test_hostfile_follows_lws_pod_names(slots):
    leader = "strata-0.strata.default"
    env = lws_env(LWS_LEADER_ADDRESS=leader, LWS_GROUP_SIZE="3", STRATA_SLOTS_PER_POD=slots)
    result = run(DOCKER / "lws-launch.sh", "--print-hostfile", env=env, check=True)
    # LeaderWorkerSet: leader pod NAME-GROUP, worker i NAME-GROUP-i, one subdomain.
    pod, domain = leader.split(".", 1)
    hosts = [leader] + [f"{pod}-{i}.{domain}" for i in (1, 2)]
    assert result.stdout.splitlines() == [f"{h} slots={slots}" for h in hosts]


def test_lws_launch_names_what_is_missing():
    result = run(DOCKER / "lws-launch.sh", "--print-hostfile", env=lws_env(LWS_GROUP_SIZE="2"))
    assert result.returncode == 2 and "LWS_LEADER_ADDRESS is not set" in result.stderr
    env = lws_env(LWS_LEADER_ADDRESS="s-0.s.ns", LWS_GROUP_SIZE="3", STRATA_MODEL="/models/m",
                  STRATA_ROUTER="tcp://r:5557", STRATA_TP="2")
    result = run(DOCKER / "lws-launch.sh", env=env)
    assert result.returncode == 2 and "Given: 2 × 1 = 2 ranks, 3 × 1 = 3 slots" in result.stderr
