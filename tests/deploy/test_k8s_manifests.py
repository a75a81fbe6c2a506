"""Checks deploy/k8s/: the base and each overlay as `kubectl kustomize` renders them.

Core objects are validated against the upstream Kubernetes schemas (kubernetes-validate,
strict: unknown fields fail), LeaderWorkerSets against the CRD's openAPIV3Schema plus a walk
that rejects the fields it does not declare (as the API server would). Then the manifests are
checked against the real binaries (every flag they pass exists, the router's config loads)
and against each other (ports, probes, selectors, volumes, Secrets, tp × pp, GPUs).

Environment: STRATA_BINARY_DIR (default <repo>/build), STRATA_SHARED_DIR (default
<repo>/../shared). A missing kubectl, CRD file or binary skips what needs it; CI=true fails.
"""
from __future__ import annotations

import copy
import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
BIN = Path(os.environ.get("STRATA_BINARY_DIR", REPO / "build")) / "bin"
SHARED = Path(os.environ.get("STRATA_SHARED_DIR", REPO.parent / "shared"))
LWS_CRD = SHARED / "k8s" / "leaderworkerset.x-k8s.io_leaderworkersets.yaml"
LAUNCH_SCRIPT = REPO / "deploy" / "launch-worker-group.sh"
LWS_LAUNCH = REPO / "deploy" / "docker" / "lws-launch.sh"
K8S_VERSION = "1.32.0"
LWS_KIND = ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet")
# Made by hand before `kubectl apply`, with the commands deploy/k8s/README.md gives.
USER_CREATED = {("Secret", "strata-transport-key"), ("Secret", "strata-ssh"),
                ("Secret", "strata-api-keys"), ("PersistentVolumeClaim", "strata-models")}
# What lws-launch.sh reads from the leader's env and hands to launch-worker-group.sh.
LEADER_ENV_OPTIONS = {"STRATA_TP": "--tp", "STRATA_PP": "--pp", "STRATA_ROUTER": "--router",
                      "STRATA_MODEL": "--model", "STRATA_GROUP_ID": "--group-id",
                      "STRATA_TRANSPORT_KEY_FILE": "--transport-key-file"}


def missing(what: str):
    """Skips the test for want of a tool or file; CI=true makes that a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what}; CI=true needs it")
    pytest.skip(what)


@functools.cache  # the tests only read what it returns
def kustomize(directory: Path) -> list[dict]:
    if shutil.which("kubectl") is None:
        missing("kubectl is not installed (it renders the kustomizations)")
    out = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True)
    assert out.returncode == 0, f"kubectl kustomize {directory}: {out.stderr}"
    return [o for o in yaml.safe_load_all(out.stdout) if o]


def base_files() -> list[dict]:
    """The base's manifest files as written (its kustomization's `resources`)."""
    base = K8S / "base"
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    return [o for f in kustomization["resources"] for o in yaml.safe_load_all((base / f).read_text()) if o]


SOURCES = {"base-files": base_files, "base": lambda: kustomize(K8S / "base"),
           "cpu": lambda: kustomize(K8S / "overlays" / "cpu"),
           "gpu": lambda: kustomize(K8S / "overlays" / "gpu")}
RENDERED = ["cpu", "gpu"]


@pytest.fixture(scope="module")
def lws_schema() -> dict:
    if not LWS_CRD.exists():
        missing(f"{LWS_CRD} is absent (the LeaderWorkerSet CRD, see shared/k8s/README.md)")
    crd = yaml.safe_load(LWS_CRD.read_text())
    return next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]["openAPIV3Schema"]


def binary(name: str) -> str:
    path = BIN / name
    if not path.exists():
        missing(f"{path} is absent (build strata, or set STRATA_BINARY_DIR)")
    return str(path)


def help_text(name: str) -> str:
    return subprocess.run([binary(name), "--help"], capture_output=True, text=True, check=True).stdout


def flags_in(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))


def launch_script_options() -> set[str]:
    return set(re.findall(r"^\s+(--[a-z-]+)\)", LAUNCH_SCRIPT.read_text(), re.M))


def by_kind(objs: list[dict], kind: str) -> list[dict]:
    return [o for o in objs if o["kind"] == kind]


def is_lws(obj: dict) -> bool:
    return (obj["apiVersion"], obj["kind"]) == LWS_KIND


def pod_templates(obj: dict) -> list[dict]:
    if obj["kind"] == "Deployment":
        return [obj["spec"]["template"]]
    if is_lws(obj):
        lwt = obj["spec"]["leaderWorkerTemplate"]
        return [lwt["leaderTemplate"], lwt["workerTemplate"]]
    return []


def containers(objs: list[dict]) -> list[tuple[dict, dict]]:
    """(pod template, container) for every container of every workload."""
    return [(t, c) for o in objs for t in pod_templates(o) for c in t["spec"]["containers"]]


def router_container(objs: list[dict]) -> dict:
    (deployment,) = [o for o in by_kind(objs, "Deployment") if o["metadata"]["name"] == "strata-router"]
    return deployment["spec"]["template"]["spec"]["containers"][0]


def leader(lws: dict) -> dict:
    return lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]


def env_of(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def router_config(objs: list[dict]) -> dict:
    """The `router:` section of the ConfigMap the router's --config file comes from."""
    container = router_container(objs)
    config_path = container["args"][container["args"].index("--config") + 1]
    mount = next(m for m in container["volumeMounts"] if config_path.startswith(m["mountPath"] + "/"))
    pod = next(t for t, c in containers(objs) if c is container)["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    (cm,) = [o for o in by_kind(objs, "ConfigMap") if o["metadata"]["name"] == volume["configMap"]["name"]]
    return yaml.safe_load(cm["data"][Path(config_path).name])["router"]


def unknown_fields(obj, schema: dict, path: str = "") -> list[str]:
    """Paths in obj that the openAPIV3Schema does not declare (jsonschema lets them pass)."""
    found = []
    if isinstance(obj, dict) and "properties" in schema:
        for key, value in obj.items():
            if key in schema["properties"]:
                found += unknown_fields(value, schema["properties"][key], f"{path}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                found += unknown_fields(value, schema["additionalProperties"], f"{path}.{key}")
            elif not schema.get("x-kubernetes-preserve-unknown-fields"):
                found.append(f"{path}.{key}")
    elif isinstance(obj, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, value in obj.items():
            found += unknown_fields(value, schema["additionalProperties"], f"{path}.{key}")
    elif isinstance(obj, list) and "items" in schema:
        for i, item in enumerate(obj):
            found += unknown_fields(item, schema["items"], f"{path}[{i}]")
    return found


def validate_lws(obj: dict, schema: dict) -> None:
    jsonschema.Draft202012Validator(schema).validate(obj)
    extra = unknown_fields(obj, schema)
    if extra:
        raise jsonschema.ValidationError(f"fields the CRD does not declare: {', '.join(extra)}")


def check(objs: list[dict], validate, source: str) -> None:
    for obj in objs:
        try:
            validate(obj)
        except jsonschema.ValidationError as e:
            where = f"{obj['kind']}/{obj['metadata']['name']} at {list(e.absolute_path)}"
            pytest.fail(f"{source}: {where}: {e.message}")


@pytest.mark.parametrize("source", SOURCES)
def test_core_objects_match_the_kubernetes_schemas(source):
    objs = SOURCES[source]()
    assert {o["kind"] for o in objs} >= {"Deployment", "Service", "PodDisruptionBudget", "LeaderWorkerSet"}
    core = [o for o in objs if not is_lws(o)]
    check(core, lambda o: kubernetes_validate.validate(o, K8S_VERSION, strict=True), source)
    for obj in objs:
        labels = obj["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/name") == "strata", f"{obj['kind']}/{obj['metadata']['name']}"
        assert labels.get("app.kubernetes.io/component") in ("router", "worker"), obj["metadata"]["name"]


@pytest.mark.parametrize("source", SOURCES)
def test_leaderworkersets_match_the_crd(source, lws_schema):
    check([o for o in SOURCES[source]() if is_lws(o)], lambda o: validate_lws(o, lws_schema), source)


def test_kubernetes_validate_rejects_broken_copies():
    (deployment,) = by_kind(kustomize(K8S / "overlays" / "cpu"), "Deployment")
    string_replicas = copy.deepcopy(deployment)
    string_replicas["spec"]["replicas"] = "1"
    typo_in_pod = copy.deepcopy(deployment)
    typo_in_pod["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []
    for broken in (string_replicas, typo_in_pod):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_crd_validation_rejects_broken_copies(lws_schema):
    (lws,) = by_kind(kustomize(K8S / "overlays" / "cpu"), "LeaderWorkerSet")
    misspelt = copy.deepcopy(lws)
    lwt = misspelt["spec"]["leaderWorkerTemplate"]
    lwt["restartPolicyy"] = lwt.pop("restartPolicy")
    deep_typo = copy.deepcopy(lws)
    deep_typo["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["imagee"] = "x"
    wrong_type = copy.deepcopy(lws)
    wrong_type["spec"]["leaderWorkerTemplate"]["size"] = "2"
    for broken in (misspelt, deep_typo, wrong_type):
        with pytest.raises(jsonschema.ValidationError):
            validate_lws(broken, lws_schema)


@pytest.mark.parametrize("overlay", RENDERED)
def test_flags_given_to_the_binaries_exist(overlay):
    objs = kustomize(K8S / "overlays" / overlay)
    router_flags, worker_flags = flags_in(help_text("strata-router")), flags_in(help_text("strata-worker"))
    assert set(a for a in router_container(objs)["args"] if a.startswith("--")) <= router_flags
    for key in router_config(objs):
        assert f"--{key.replace('_', '-')}" in router_flags, f"router.yaml: `{key}` is no strata-router flag"
    (lws,) = by_kind(objs, "LeaderWorkerSet")
    args = leader(lws)["args"]
    split = args.index("--") if "--" in args else len(args)
    own, for_ranks = args[:split], args[split + 1:]
    assert {a for a in own if a.startswith("--")} <= launch_script_options(), own
    assert {a for a in for_ranks if a.startswith("--")} <= worker_flags, for_ranks
    assert set(LEADER_ENV_OPTIONS) <= {e["name"] for e in leader(lws)["env"]}
    assert set(LEADER_ENV_OPTIONS.values()) <= launch_script_options()


@pytest.mark.parametrize("overlay", RENDERED)
def test_router_accepts_its_config(overlay, tmp_path):
    objs = kustomize(K8S / "overlays" / overlay)
    config = router_config(objs)
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump({"router": config}))
    out = subprocess.run([binary("strata-router"), "--config", str(path), "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for key, value in config.items():  # --help shows the values the config set as defaults
        shown = rf"\w+={re.escape(str(value))}"
        if isinstance(value, bool):
            shown = rf"\(default: {'on' if value else 'off'}\)"
        assert re.search(rf"--{key.replace('_', '-')} {shown}\s", out.stdout), f"{key}: {value}"


@pytest.mark.parametrize("overlay", RENDERED)
def test_router_ports_probes_and_drain_agree(overlay):
    objs = kustomize(K8S / "overlays" / overlay)
    config, container = router_config(objs), router_container(objs)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == config["port"]
    assert ports["probes"] == config["probe_port"]
    assert ports["zmq"] == int(config["zmq_endpoint"].rsplit(":", 1)[1])
    probes = {"readinessProbe": "/ready", "livenessProbe": "/metrics"}
    for probe, path in probes.items():
        get = container[probe]["httpGet"]
        assert get["path"] == path and get["port"] in ports and ports[get["port"]] == config["probe_port"]
    (deployment,) = by_kind(objs, "Deployment")
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > config["drain_timeout_s"] + pre_stop
    for path in (config["model"], config["transport_key_file"]):
        assert any(path.startswith(m["mountPath"] + "/") for m in container["volumeMounts"]), path


@pytest.mark.parametrize("overlay", RENDERED)
def test_services_select_pods_and_name_their_ports(overlay):
    objs = kustomize(K8S / "overlays" / overlay)
    for service in by_kind(objs, "Service"):
        selector = service["spec"]["selector"]
        matches = [(t, c) for t, c in containers(objs) if selector.items() <= t["metadata"]["labels"].items()]
        assert matches, f"Service {service['metadata']['name']} selects no pod"
        names = {p["name"] for _, c in matches for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in names, f"{service['metadata']['name']}: {port['targetPort']}"
    for pdb in by_kind(objs, "PodDisruptionBudget"):
        selector = pdb["spec"]["selector"]["matchLabels"]
        assert any(selector.items() <= t["metadata"]["labels"].items() for t, _ in containers(objs))


@pytest.mark.parametrize("overlay", RENDERED)
def test_worker_pods_are_reached_by_worker_pods_alone(overlay):
    """mpirun's out-of-band listener binds every address of a worker pod: the NetworkPolicy
    is what keeps the rest of the cluster off it."""
    objs = kustomize(K8S / "overlays" / overlay)
    (policy,) = by_kind(objs, "NetworkPolicy")
    spec = policy["spec"]
    workers = spec["podSelector"]["matchLabels"]
    selected = {t["metadata"]["labels"]["app.kubernetes.io/component"]
                for t, _ in containers(objs) if workers.items() <= t["metadata"]["labels"].items()}
    assert selected == {"worker"}, selected  # leader and worker pods, not the router
    assert spec["policyTypes"] == ["Ingress"]
    (rule,) = spec["ingress"]
    assert set(rule) == {"from"}, rule  # every port, from the peers below only
    (peer,) = rule["from"]
    assert peer == {"podSelector": {"matchLabels": workers}}, peer


@pytest.mark.parametrize("overlay", RENDERED)
def test_worker_groups_reach_the_router_and_fit_their_size(overlay):
    objs = kustomize(K8S / "overlays" / overlay)
    (lws,) = by_kind(objs, "LeaderWorkerSet")
    env = env_of(leader(lws))
    lwt = lws["spec"]["leaderWorkerTemplate"]
    ranks_per_pod = int(env.get("STRATA_SLOTS_PER_POD", 1))  # lws-launch.sh's default
    assert lwt["size"] * ranks_per_pod == int(env["STRATA_TP"]) * int(env["STRATA_PP"])
    assert lwt["restartPolicy"] == "RecreateGroupOnPodRestart"
    assert env["STRATA_MODEL"] == router_config(objs)["model"]
    group_id = next(e for e in leader(lws)["env"] if e["name"] == "STRATA_GROUP_ID")
    assert group_id["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    host, port = re.fullmatch(r"tcp://([a-z0-9-]+):(\d+)", env["STRATA_ROUTER"]).groups()
    (service,) = [s for s in by_kind(objs, "Service") if s["metadata"]["name"] == host]
    (zmq,) = [p for p in service["spec"]["ports"] if p["port"] == int(port)]
    assert zmq["targetPort"] == "zmq" and service["spec"].get("publishNotReadyAddresses") is True
    for template in pod_templates(lws):
        for container in template["spec"]["containers"]:
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert {"/models", "/etc/strata/transport", "/etc/strata/ssh"} <= mounts, container["name"]


@pytest.mark.parametrize("overlay", RENDERED)
def test_gpus_only_in_the_gpu_overlay(overlay):
    objs = kustomize(K8S / "overlays" / overlay)
    (lws,) = by_kind(objs, "LeaderWorkerSet")
    for template, container in containers(objs):
        gpus = container.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")
        in_group = template in pod_templates(lws)
        assert (gpus == 1) == (overlay == "gpu" and in_group), (overlay, container["name"], gpus)
    args = leader(lws)["args"]
    device = args[args.index("--device") + 1]
    assert device == ("cuda" if overlay == "gpu" else "cpu")
    env = env_of(leader(lws))
    if overlay == "gpu":  # lws-launch.sh has mpirun export the leader's NCCL_* to every rank
        assert env["NCCL_SOCKET_IFNAME"] == "eth0"
        if LWS_LAUNCH.exists():
            assert "NCCL_" in LWS_LAUNCH.read_text(), f"{LWS_LAUNCH} no longer exports NCCL_*"
    else:
        assert "--threads" in args and not any(k.startswith("NCCL_") for k in env)


VOLUME_REFS = (("configMap", "ConfigMap", "name"), ("secret", "Secret", "secretName"),
               ("persistentVolumeClaim", "PersistentVolumeClaim", "claimName"))
ENV_REFS = (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap"))


def references(pod: dict) -> set[tuple[str, str]]:
    """(kind, name) of every ConfigMap, Secret and claim a pod's volumes and env name."""
    refs = {(kind, v[key][field]) for v in pod.get("volumes", []) for key, kind, field in VOLUME_REFS if key in v}
    return refs | {(kind, e["valueFrom"][key]["name"]) for c in pod["containers"] for e in c.get("env", [])
                   for key, kind in ENV_REFS if key in e.get("valueFrom", {})}


@pytest.mark.parametrize("overlay", RENDERED)
def test_volumes_and_referenced_objects_exist(overlay):
    objs = kustomize(K8S / "overlays" / overlay)
    present = {(o["kind"], o["metadata"]["name"]) for o in objs}
    readme = (K8S / "README.md").read_text()
    for obj in objs:
        for template in pod_templates(obj):
            pod = template["spec"]
            volumes = {v["name"] for v in pod.get("volumes", [])}
            for container in pod["containers"]:
                for mount in container.get("volumeMounts", []):
                    assert mount["name"] in volumes, f"{obj['metadata']['name']}: {mount['name']}"
            for ref in references(pod):
                assert ref in present or ref in USER_CREATED, f"{obj['metadata']['name']} uses {ref}"
    for kind, name in USER_CREATED:
        assert name in readme, f"deploy/k8s/README.md does not say how to create {kind} {name}"
