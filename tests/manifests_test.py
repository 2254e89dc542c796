"""kubeflow/manifests: TF Serving Deployment + Service, checked against the Kubernetes client's models.

Each document is deserialized into its `kubernetes.client` model (which validates required fields and
types) and serialized back: a misspelt or misplaced field would be dropped on the way and the round trip
would differ from the file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from kubernetes import client

MANIFESTS = Path(__file__).resolve().parents[1] / "kubeflow" / "manifests"
MODELS = {("apps/v1", "Deployment"): "V1Deployment", ("v1", "Service"): "V1Service"}


class _Response:
    """What ApiClient.deserialize reads: an object with `.data`."""

    def __init__(self, document: dict):
        self.data = json.dumps(document)


def _load(document: dict):
    api = client.ApiClient()
    model = api.deserialize(_Response(document), MODELS[(document["apiVersion"], document["kind"])])
    assert api.sanitize_for_serialization(model) == document, "unknown or misplaced fields"
    return model


@pytest.fixture(scope="module")
def kustomization() -> dict:
    return yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())


@pytest.fixture(scope="module")
def objects(kustomization) -> dict[str, object]:
    result = {}
    for resource in kustomization["resources"]:
        for document in yaml.safe_load_all((MANIFESTS / resource).read_text()):
            result[document["kind"]] = _load(document)
    return result


def _generator(kustomization: dict, kind: str) -> dict:
    (generator,) = [g for g in kustomization["configMapGenerator"] if kind in g]
    return generator


def _config_literals(kustomization: dict) -> dict[str, str]:
    return dict(literal.split("=", 1) for literal in _generator(kustomization, "literals")["literals"])


def test_every_manifest_is_a_valid_kubernetes_object(objects):
    assert set(objects) == {"Deployment", "Service"}


def test_tf_serving_pinned_with_rest_and_grpc_ports(objects):
    container = objects["Deployment"].spec.template.spec.containers[0]
    image, _, tag = container.image.partition(":")
    assert image == "tensorflow/serving" and re.fullmatch(r"\d+\.\d+\.\d+", tag)
    assert {p.name: p.container_port for p in container.ports} == {"grpc": 8500, "http": 8501}
    assert "--port=8500" in container.args and "--rest_api_port=8501" in container.args
    service = objects["Service"]
    assert {p.name: (p.port, p.target_port) for p in service.spec.ports} == {
        "grpc": (8500, "grpc"),
        "http": (8501, "http"),
    }
    assert service.spec.selector == objects["Deployment"].spec.template.metadata.labels


def test_model_path_and_readiness_probe_on_the_model_status_endpoint(objects, kustomization):
    deployment = objects["Deployment"]
    container = deployment.spec.template.spec.containers[0]
    literals = _config_literals(kustomization)
    assert container.env_from[0].config_map_ref.name == _generator(kustomization, "literals")["name"]
    assert "--model_base_path=$(MODEL_BASE_PATH)" in container.args
    assert "--model_name=$(MODEL_NAME)" in container.args
    assert literals["MODEL_NAME"] == "movielens_ranker"  # pipeline.config.DEFAULT_MODEL_NAME
    probe = container.readiness_probe.http_get
    assert (probe.path, probe.port) == (f"/v1/models/{literals['MODEL_NAME']}", "http")


def test_resource_limits_and_non_root(objects):
    pod = objects["Deployment"].spec.template.spec
    container = pod.containers[0]
    assert set(container.resources.limits) == {"cpu", "memory"}
    assert set(container.resources.requests) == {"cpu", "memory"}
    assert pod.security_context.run_as_non_root is True and pod.security_context.run_as_user != 0
    assert container.security_context.allow_privilege_escalation is False
    assert container.security_context.capabilities.drop == ["ALL"]


def test_model_name_matches_the_pipeline_default(kustomization):
    from pipeline.config import DEFAULT_MODEL_NAME

    literals = _config_literals(kustomization)
    assert literals["MODEL_NAME"] == DEFAULT_MODEL_NAME
    assert literals["MODEL_BASE_PATH"].endswith(f"/{DEFAULT_MODEL_NAME}")


def _monitoring_config():
    """An empty tensorflow.serving.MonitoringConfig (tensorflow_serving/config/monitoring_config.proto; the
    tensorflow-serving-api wheel does not ship it): text_format refuses a misspelt or misplaced field."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    proto = descriptor_pb2.FileDescriptorProto(name="monitoring_config.proto", package="tensorflow.serving")
    prometheus = proto.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=8, label=1)  # bool
    prometheus.field.add(name="path", number=2, type=9, label=1)  # string
    monitoring = proto.message_type.add(name="MonitoringConfig")
    monitoring.field.add(name="prometheus_config", number=1, type=11, label=1,
                         type_name=".tensorflow.serving.PrometheusConfig")  # fmt: skip
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.MessageFactory(pool).GetPrototype(
        pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig")
    )()


def test_prometheus_endpoint_enabled_and_annotated_for_scraping(objects, kustomization):
    """The monitoring config parses as TF Serving's MonitoringConfig, is mounted where the flag points, and the
    pod's scrape annotations name its path on the REST port."""
    from google.protobuf import text_format

    generator = _generator(kustomization, "files")
    (name,) = generator["files"]
    config = text_format.Parse((MANIFESTS / name).read_text(), _monitoring_config())
    assert config.prometheus_config.enable
    pod = objects["Deployment"].spec.template
    container = pod.spec.containers[0]
    (flag,) = [a for a in container.args if a.startswith("--monitoring_config_file=")]
    mount = next(m for m in container.volume_mounts if flag.split("=", 1)[1] == f"{m.mount_path}/{name}")
    volume = next(v for v in pod.spec.volumes if v.name == mount.name)
    assert volume.config_map.name == generator["name"]
    annotations = pod.metadata.annotations
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == config.prometheus_config.path
    assert int(annotations["prometheus.io/port"]) == next(p.container_port for p in container.ports if p.name == "http")


# kubeflow/manifests/flink/: the Flink cluster `recommender compile --beam-runner flink` submits to.
FLINK = MANIFESTS / "flink"


@pytest.fixture(scope="module")
def flink() -> dict[str, dict]:
    kustomization = yaml.safe_load((FLINK / "kustomization.yaml").read_text())
    documents = {"Kustomization": kustomization}
    for resource in kustomization["resources"]:
        for document in yaml.safe_load_all((FLINK / resource).read_text()):
            documents[document["kind"]] = document
    return documents


def _unknown_fields(document, schema: dict, path: str = "") -> list[str]:
    """Fields of `document` that `schema` (a CRD's structural schema) does not declare: the API server would
    prune them silently, so a misspelt or misplaced field would just vanish."""
    if isinstance(document, list):
        return [f for i, item in enumerate(document) for f in _unknown_fields(item, schema.get("items", {}), path)]
    if not isinstance(document, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    properties, additional = schema.get("properties"), schema.get("additionalProperties")
    unknown = []
    for key, value in document.items():
        if properties is not None and key in properties:
            unknown += _unknown_fields(value, properties[key], f"{path}.{key}")
        elif isinstance(additional, dict):
            unknown += _unknown_fields(value, additional, f"{path}.{key}")
        elif properties is not None:
            unknown.append(f"{path}.{key}")
    return unknown


def _container(pod_template: dict, name: str) -> dict:
    (container,) = [c for c in pod_template["spec"]["containers"] if c["name"] == name]
    return container


def test_flink_deployment_is_valid_against_the_operators_crd(flink):
    """The Flink Kubernetes Operator's own CRD (its API jar from Maven, tests/flink_operator_crd.py): the schema
    validates types, enums and required fields, and no field is unknown to it; pod templates are Kubernetes Pods."""
    import jsonschema
    from flink_operator_crd import schema

    deployment = flink["FlinkDeployment"]
    group, version = deployment["apiVersion"].split("/")
    assert group == "flink.apache.org"
    crd = schema(version)
    jsonschema.validate(deployment, crd)
    spec_schema = crd["properties"]["spec"]  # apiVersion, kind and metadata are every object's
    assert _unknown_fields(deployment["spec"], spec_schema, ".spec") == []
    for role in ("jobManager", "taskManager"):
        template = deployment["spec"][role]["podTemplate"]
        _load_pod(template)
    misspelt = {**deployment["spec"], "taskManger": {}}
    assert _unknown_fields(misspelt, spec_schema, ".spec") == [".spec.taskManger"]  # The check can fail.


def _load_pod(template: dict):
    api = client.ApiClient()
    model = api.deserialize(_Response(template), "V1Pod")
    assert api.sanitize_for_serialization(model) == template, "unknown or misplaced fields"
    return model


def test_flink_cluster_job_server_and_runner_are_one_flink_version(flink):
    """Flink of the cluster = Flink of Beam's job server image = the runner `recommender run` fetches."""
    from pipeline.flink import artifacts

    spec = flink["FlinkDeployment"]["spec"]
    flink_version = spec["flinkVersion"].removeprefix("v").replace("_", ".")
    assert spec["image"].startswith(f"flink:{flink_version}.") and spec["image"].endswith("-java17")
    job_server = _container(spec["jobManager"]["podTemplate"], "beam-job-server")
    assert job_server["image"] == f"apache/beam_flink{flink_version}_job_server:{artifacts.VERSION}"
    assert artifacts.ARTIFACT_ID == f"beam-runners-flink-{flink_version}"
    assert any(name.startswith(f"flink-runtime-{flink_version}.") for name in artifacts.read_lock())


def test_compile_defaults_reach_the_job_server_and_the_worker_pools(flink):
    """`compile --beam-runner flink`'s default endpoints are this Service and this sidecar."""
    from pipeline.config import CLUSTER_FLINK_JOB_ENDPOINT, CLUSTER_FLINK_WORKER_POOL

    deployment, service = flink["FlinkDeployment"], _load(flink["Service"])
    job_server = _container(deployment["spec"]["jobManager"]["podTemplate"], "beam-job-server")
    ports = {p["name"]: p["containerPort"] for p in job_server["ports"]}
    args = dict(arg.split("=", 1) for arg in job_server["args"])
    assert args["--flink-master"] == "localhost:8081"  # The JobManager's REST port, in the same pod.
    assert {int(args[f"--{name}-port"]) for name in ports} == set(ports.values())
    # The operator labels the JobManager pod app=<deployment name>, component=jobmanager.
    assert service.spec.selector == {"app": deployment["metadata"]["name"], "component": "jobmanager"}
    assert {p.name: p.target_port for p in service.spec.ports} == {name: name for name in ports}
    host, port = CLUSTER_FLINK_JOB_ENDPOINT.split(":")
    assert (host, int(port)) == (service.metadata.name, next(p.port for p in service.spec.ports if p.name == "job"))

    task_manager = deployment["spec"]["taskManager"]["podTemplate"]
    pool = _container(task_manager, "beam-worker-pool")
    (image,) = flink["Kustomization"]["images"]
    assert pool["image"] == image["name"] and pool["args"] == ["--worker_pool"]  # Beam's boot, the image's entrypoint
    host, port = CLUSTER_FLINK_WORKER_POOL.split(":")
    assert host == "localhost" and int(port) == next(p["containerPort"] for p in pool["ports"])
    dockerfile = (MANIFESTS.parent / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["/opt/apache/beam/boot"]' in dockerfile


def test_flink_spills_to_a_mounted_volume(flink):
    spec = flink["FlinkDeployment"]["spec"]
    spill = spec["flinkConfiguration"]["io.tmp.dirs"]
    task_manager = spec["taskManager"]["podTemplate"]["spec"]
    mount = next(m for m in _container({"spec": task_manager}, "flink-main-container")["volumeMounts"])
    assert mount["mountPath"] == spill
    assert any(v["name"] == mount["name"] and "emptyDir" in v for v in task_manager["volumes"])


def test_the_flink_clusters_network_buffers_are_sized_as_for_a_local_run(flink):
    """The TaskManager's network settings are what `recommender run` gives a TaskManager with as many slots: with
    fewer buffers per slot, Transform's job fails reserving them ("Insufficient number of network buffers")."""
    from pipeline.flink import job_server

    settings = flink["FlinkDeployment"]["spec"]["flinkConfiguration"]
    expected = job_server.network_settings(int(settings["taskmanager.numberOfTaskSlots"]))
    assert {key: str(settings[key]) for key in expected} == {key: str(value) for key, value in expected.items()}
