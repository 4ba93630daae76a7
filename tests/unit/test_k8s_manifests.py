"""The Kubernetes manifests parse and keep the conventions in deploy/k8s/README.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from liandong.topics import CATALOGUE

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"


def documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for name in kustomization["resources"]:
        docs.extend(d for d in yaml.safe_load_all((K8S / name).read_text()) if d)
    return docs


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(doc["spec"]["template"]["spec"]["containers"])


def test_every_file_is_listed_and_parses() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk
    assert all("kind" in d and "apiVersion" in d for d in documents())


def test_deployments_have_probes_resources_and_budgets() -> None:
    docs = documents()
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} >= {
        "gateway",
        "alerts",
        "dispatch",
        "casefile",
    }
    budgets = {
        d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for d in docs
        if d["kind"] == "PodDisruptionBudget"
    }
    for deployment in deployments:
        for container in containers(deployment):
            assert container.get("readinessProbe") and container.get("livenessProbe"), deployment[
                "metadata"
            ]["name"]
            assert container["resources"]["requests"] and container["resources"]["limits"]
        if deployment["metadata"]["name"] != "otel-collector":
            assert deployment["metadata"]["name"] in budgets


def test_grpc_probe_ports_are_integers() -> None:
    # Kubernetes rejects a named port in a grpc probe.
    for doc in documents():
        if doc["kind"] != "Deployment":
            continue
        for container in containers(doc):
            for probe in ("readinessProbe", "livenessProbe"):
                grpc = container.get(probe, {}).get("grpc")
                if grpc is not None:
                    assert isinstance(grpc["port"], int)


def test_faust_workers_scale_by_lag_with_one_disruption_at_a_time() -> None:
    docs = documents()
    scaled = next(d for d in docs if d["kind"] == "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "alerts"
    assert not [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]  # KEDA owns the HPA
    pdb = next(
        d for d in docs if d["kind"] == "PodDisruptionBudget" and d["metadata"]["name"] == "alerts"
    )
    assert pdb["spec"]["maxUnavailable"] == 1
    topics = {d["metadata"]["name"]: d for d in docs if d["kind"] == "KafkaTopic"}
    assert scaled["spec"]["maxReplicaCount"] == topics["monitoring.records"]["spec"]["partitions"]


def test_kafka_topics_match_the_catalogue() -> None:
    topics = {d["metadata"]["name"]: d for d in documents() if d["kind"] == "KafkaTopic"}
    assert set(topics) == {spec.name for spec in CATALOGUE}
    for spec in CATALOGUE:
        policy = topics[spec.name]["spec"]["config"].get("cleanup.policy", "delete")
        assert policy == spec.config.get("cleanup.policy", "delete")


def _secrets_and_mounts(deployment: dict[str, Any]) -> tuple[set[str], set[str], set[str]]:
    """Secrets a deployment's pods read (env or volume), its mount paths, its ConfigMaps."""
    pod = deployment["spec"]["template"]["spec"]
    secrets = {v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}
    maps = {v["configMap"]["name"] for v in pod.get("volumes", []) if "configMap" in v}
    mounts: set[str] = set()
    for container in pod["containers"]:
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                secrets.add(source["secretRef"]["name"])
        mounts |= {m["mountPath"] for m in container.get("volumeMounts", [])}
    return secrets, mounts, maps


def test_no_pod_holds_another_services_keys_and_key_paths_are_mounted() -> None:
    docs = documents()
    by_name = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    secrets = {d["metadata"]["name"]: d["stringData"] for d in docs if d["kind"] == "Secret"}
    readers: dict[str, set[str]] = {}
    for name, deployment in by_name.items():
        for secret in _secrets_and_mounts(deployment)[0]:
            assert secret in secrets, f"{name} reads a Secret that is not defined: {secret}"
            readers.setdefault(secret, set()).add(name)
    # casefile's token key and dispatch's private key each reach exactly one service
    holding_jwt_key = {s for s, data in secrets.items() if "LIANDONG_JWT_KEY" in data}
    assert {n for s in holding_jwt_key for n in readers.get(s, ())} == {"casefile"}
    assert readers["dispatch-casefile-key"] == {"dispatch"}
    _, casefile_mounts, casefile_maps = _secrets_and_mounts(by_name["casefile"])
    _, dispatch_mounts, _ = _secrets_and_mounts(by_name["dispatch"])
    public = secrets["casefile-secrets"]["LIANDONG_CASEFILE_SERVICE_KEYS"].split("=", 1)[1]
    assert str(Path(public).parent) in casefile_mounts and "service-keys" in casefile_maps
    private = secrets["dispatch-secrets"]["LIANDONG_DISPATCH_CASEFILE_KEY"]
    assert str(Path(private).parent) in dispatch_mounts
