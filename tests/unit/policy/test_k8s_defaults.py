"""The API server's decoding and defaulting of built-in objects (values from kubernetes/kubernetes:
pkg/apis/{core,apps,batch}/v1/defaults.go and zz_generated.defaults.go)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from trustgate.policy.k8s_defaults import decoded, generated_names, is_typed, nested_deeper

CONTAINER = {"name": "c", "image": "registry.example.com/app:1.25"}
DEFAULTED_CONTAINER = {
    **CONTAINER,
    "imagePullPolicy": "IfNotPresent",
    "terminationMessagePath": "/dev/termination-log",
    "terminationMessagePolicy": "File",
    "resources": {},
}
DEFAULTED_POD_SPEC = {
    "containers": [DEFAULTED_CONTAINER],
    "dnsPolicy": "ClusterFirst",
    "restartPolicy": "Always",
    "securityContext": {},
    "terminationGracePeriodSeconds": 30,
    "schedulerName": "default-scheduler",
}


def _template() -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [dict(CONTAINER)]}}


def _object(api_version: str, kind: str, spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", **meta}}
    if spec is not None:
        obj["spec"] = spec
    return obj


def test_the_given_object_is_not_changed() -> None:
    obj = _object("apps/v1", "Deployment", {"template": _template()}, labels=None)
    before = copy.deepcopy(obj)
    decoded(obj)
    assert obj == before


def test_a_custom_resource_is_taken_as_written() -> None:
    obj = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"labels": None},
        "spec": {"x": None},
    }
    assert decoded(obj) is obj
    assert not is_typed(obj)


def test_nulls_are_dropped_and_null_string_map_values_are_empty_strings() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "labels": {"team": None}, "annotations": None},
        "data": {"k": None},
        "immutable": None,
    }
    assert decoded(obj) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "labels": {"team": ""}},
        "data": {"k": ""},
    }


def test_a_kind_with_raw_json_has_only_its_metadata_decoded() -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "x", "labels": None},
        "spec": {"versions": [{"schema": {"openAPIV3Schema": {"default": None}}}]},
    }
    assert decoded(crd)["metadata"] == {"name": "x"}
    assert decoded(crd)["spec"] == crd["spec"]


def test_deployment() -> None:
    out = decoded(_object("apps/v1", "Deployment", {"template": _template()}, labels=None))
    assert out["metadata"] == {"name": "x"}
    assert out["spec"] == {
        "replicas": 1,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
        "template": {"metadata": {"labels": {"app": "a"}}, "spec": DEFAULTED_POD_SPEC},
    }


def test_deployment_keeps_what_is_given_and_a_recreate_strategy_has_no_rolling_update() -> None:
    spec = {
        "replicas": 0,
        "strategy": {"type": "Recreate"},
        "revisionHistoryLimit": 0,
        "template": _template(),
    }
    out = decoded(_object("apps/v1", "Deployment", spec))["spec"]
    assert out["replicas"] == 0
    assert out["strategy"] == {"type": "Recreate"}
    assert out["revisionHistoryLimit"] == 0


def test_replica_set() -> None:
    out = decoded(_object("apps/v1", "ReplicaSet", {"template": _template()}))["spec"]
    assert out["replicas"] == 1
    assert out["template"]["spec"] == DEFAULTED_POD_SPEC


def test_stateful_set() -> None:
    claim = {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}}
    out = decoded(
        _object("apps/v1", "StatefulSet", {"template": _template(), "volumeClaimTemplates": [claim]})
    )
    spec = out["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert spec["replicas"] == 1
    assert spec["revisionHistoryLimit"] == 10
    assert spec["template"]["spec"] == DEFAULTED_POD_SPEC
    [template] = spec["volumeClaimTemplates"]
    assert template["status"] == {"phase": "Pending"}
    assert template["spec"]["volumeMode"] == "Filesystem"


def test_stateful_set_on_delete_gets_no_rolling_update() -> None:
    spec = {"updateStrategy": {"type": "OnDelete"}, "template": _template()}
    assert decoded(_object("apps/v1", "StatefulSet", spec))["spec"]["updateStrategy"] == {"type": "OnDelete"}


def test_daemon_set() -> None:
    spec = decoded(_object("apps/v1", "DaemonSet", {"template": _template()}))["spec"]
    assert spec["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert spec["revisionHistoryLimit"] == 10
    assert "replicas" not in spec


def test_job() -> None:
    out = decoded(_object("batch/v1", "Job", {"template": _template()}))
    assert out["metadata"]["labels"] == {"app": "a"}  # the template's, where the Job has none
    spec = out["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed"
    assert spec["suspend"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert spec["manualSelector"] is False
    assert spec["template"]["spec"]["restartPolicy"] == "Always"  # validation then refuses it


def test_job_with_parallelism_backoff_per_index_and_failure_policy() -> None:
    failure = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    spec = {"parallelism": 3, "backoffLimitPerIndex": 1, "podFailurePolicy": failure, "template": _template()}
    out = decoded(_object("batch/v1", "Job", spec, labels={"own": "x"}))
    assert out["metadata"]["labels"] == {"own": "x"}
    spec = out["spec"]
    assert "completions" not in spec
    assert spec["parallelism"] == 3
    assert spec["backoffLimit"] == 2147483647
    assert spec["podFailurePolicy"]["rules"][0]["onPodConditions"] == [
        {"type": "DisruptionTarget", "status": "True"}
    ]
    assert spec["podReplacementPolicy"] == "Failed"


def test_cron_job() -> None:
    spec = {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": _template()}}}
    out = decoded(_object("batch/v1", "CronJob", spec))["spec"]
    assert out["concurrencyPolicy"] == "Allow"
    assert out["suspend"] is False
    assert (out["successfulJobsHistoryLimit"], out["failedJobsHistoryLimit"]) == (3, 1)
    assert out["jobTemplate"]["spec"]["template"]["spec"] == DEFAULTED_POD_SPEC
    assert "backoffLimit" not in out["jobTemplate"]["spec"]  # SetDefaults_Job runs on Jobs only


def test_replication_controller() -> None:
    out = decoded(_object("v1", "ReplicationController", {"template": _template()}))
    assert out["metadata"]["labels"] == {"app": "a"}
    assert out["spec"]["selector"] == {"app": "a"}
    assert out["spec"]["replicas"] == 1
    assert out["spec"]["template"]["spec"] == DEFAULTED_POD_SPEC


def test_pod() -> None:
    container = {
        "name": "c",
        "image": "nginx",
        "ports": [{"containerPort": 80}],
        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}},
    }
    spec = {
        "hostNetwork": True,
        "containers": [container],
        "initContainers": [{"name": "i", "image": "busybox:latest"}],
    }
    out = decoded(_object("v1", "Pod", spec))["spec"]
    [c] = out["containers"]
    assert c["imagePullPolicy"] == "Always"  # no tag: latest
    assert c["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP", "hostPort": 80}]
    assert out["initContainers"][0]["imagePullPolicy"] == "Always"
    assert out["enableServiceLinks"] is True


def test_pod_only_defaults_belong_to_pods() -> None:
    template = {
        "spec": {"containers": [{"name": "c", "image": "a:1", "resources": {"limits": {"cpu": "1"}}}]}
    }
    spec = decoded(_object("v1", "PodTemplate", None) | {"template": template})["template"]["spec"]
    assert "enableServiceLinks" not in spec
    assert "requests" not in spec["containers"][0]["resources"]


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("registry.example.com:5000/team/app:latest", "Always"),
        ("nginx:1.25", "IfNotPresent"),
        ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
        ("nginx:latest@sha256:" + "a" * 64, "Always"),
        ("Not A Reference", "IfNotPresent"),
        ("", "IfNotPresent"),
        # parsers.ParseImageName (dockerref.ParseNormalizedNamed) refuses these: tag "", so
        # IfNotPresent where a latest tag is implied or written.
        ("0" * 64, "IfNotPresent"),  # "cannot specify 64-byte hexadecimal strings"
        ("a" * 64 + ":latest", "Always"),  # not the identifier alone: a name
        ("Nginx", "IfNotPresent"),  # "repository name must be lowercase"
        ("registry.example.com/Team/app", "IfNotPresent"),
        ("Registry/app", "Always"),  # an upper-case first component is a registry
        ("a/" + "b" * 250, "IfNotPresent"),  # docker.io/a/bbb... is over 255 characters
        ("nginx:latest@sha1:" + "a" * 40, "IfNotPresent"),  # go-digest: unsupported
        ("nginx:latest@sha256:" + "A" * 64, "IfNotPresent"),  # not lower-case hex
        ("nginx:latest@sha384:" + "a" * 96, "Always"),
    ],
)
def test_image_pull_policy(image: str, policy: str) -> None:
    pod = decoded(_object("v1", "Pod", {"containers": [{"name": "c", "image": image}]}))
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_an_empty_pull_policy_is_unset_and_a_given_one_stays() -> None:
    spec = {
        "containers": [
            {"name": "a", "image": "x:1", "imagePullPolicy": ""},
            {"name": "b", "image": "x", "imagePullPolicy": "Never"},
        ]
    }
    a, b = decoded(_object("v1", "Pod", spec))["spec"]["containers"]
    assert (a["imagePullPolicy"], b["imagePullPolicy"]) == ("IfNotPresent", "Never")


def test_probes_and_lifecycle_hooks() -> None:
    container = {
        "name": "c",
        "image": "x:1",
        "livenessProbe": {"httpGet": {"port": 8080}},
        "readinessProbe": {"grpc": {"port": 9000}, "timeoutSeconds": 0, "periodSeconds": 5},
        "startupProbe": {"exec": {"command": ["true"]}},
        "lifecycle": {"preStop": {"httpGet": {"port": 80}}},
        "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
    }
    [c] = decoded(_object("v1", "Pod", {"containers": [container]}))["spec"]["containers"]
    thresholds = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert c["livenessProbe"] == {"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"}, **thresholds}
    assert c["readinessProbe"] == {"grpc": {"port": 9000, "service": ""}, **thresholds, "periodSeconds": 5}
    assert c["startupProbe"] == {"exec": {"command": ["true"]}, **thresholds}
    assert c["lifecycle"]["preStop"]["httpGet"] == {"port": 80, "path": "/", "scheme": "HTTP"}
    assert c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"


def test_volumes() -> None:
    volumes = [
        {"name": "empty"},
        {"name": "s", "secret": {"secretName": "s"}},
        {"name": "cm", "configMap": {"name": "c", "defaultMode": 256}},
        {"name": "d", "downwardAPI": {"items": [{"path": "p", "fieldRef": {"fieldPath": "metadata.name"}}]}},
        {"name": "p", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
        {"name": "h", "hostPath": {"path": "/x"}},
        {"name": "e", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}}},
        {"name": "i", "image": {"reference": "registry.example.com/data:latest"}},
        {"name": "r", "rbd": {"monitors": ["m"], "image": "i"}},
        {"name": "a", "azureDisk": {"diskName": "d", "diskURI": "u"}},
    ]
    out = decoded(_object("v1", "Pod", {"containers": [dict(CONTAINER)], "volumes": volumes}))
    by_name = {v["name"]: v for v in out["spec"]["volumes"]}
    assert by_name["empty"] == {"name": "empty", "emptyDir": {}}
    assert by_name["s"]["secret"]["defaultMode"] == 420
    assert by_name["cm"]["configMap"]["defaultMode"] == 256
    assert by_name["d"]["downwardAPI"] == {
        "items": [{"path": "p", "fieldRef": {"fieldPath": "metadata.name", "apiVersion": "v1"}}],
        "defaultMode": 420,
    }
    assert by_name["p"]["projected"] == {
        "sources": [{"serviceAccountToken": {"path": "t", "expirationSeconds": 3600}}],
        "defaultMode": 420,
    }
    assert by_name["h"]["hostPath"] == {"path": "/x", "type": ""}
    assert by_name["e"]["ephemeral"]["volumeClaimTemplate"]["spec"]["volumeMode"] == "Filesystem"
    assert by_name["i"]["image"]["pullPolicy"] == "Always"
    assert by_name["r"]["rbd"] | {} == {
        "monitors": ["m"],
        "image": "i",
        "pool": "rbd",
        "user": "admin",
        "keyring": "/etc/ceph/keyring",
    }
    assert by_name["a"]["azureDisk"] == {
        "diskName": "d",
        "diskURI": "u",
        "cachingMode": "ReadWrite",
        "kind": "Shared",
        "fsType": "ext4",
        "readOnly": False,
    }


def test_container_security_context_is_not_defaulted() -> None:
    spec = {"containers": [{"name": "c", "image": "x:1", "securityContext": {"runAsNonRoot": True}}]}
    out = decoded(_object("v1", "Pod", spec))["spec"]
    assert out["containers"][0]["securityContext"] == {"runAsNonRoot": True}
    assert out["securityContext"] == {}  # the Pod's is allocated empty
    assert "automountServiceAccountToken" not in out


def test_service() -> None:
    out = decoded(
        _object(
            "v1", "Service", {"ports": [{"port": 80}, {"port": 53, "protocol": "UDP", "targetPort": "dns"}]}
        )
    )
    spec = out["spec"]
    assert spec["sessionAffinity"] == "None"
    assert spec["type"] == "ClusterIP"
    assert spec["ports"] == [
        {"port": 80, "protocol": "TCP", "targetPort": 80},
        {"port": 53, "protocol": "UDP", "targetPort": "dns"},
    ]
    assert spec["internalTrafficPolicy"] == "Cluster"
    for absent in ("externalTrafficPolicy", "allocateLoadBalancerNodePorts", "ipFamilyPolicy", "clusterIP"):
        assert absent not in spec


def test_load_balancer_and_client_ip_service() -> None:
    spec = {"type": "LoadBalancer", "sessionAffinity": "ClientIP", "ports": [{"port": 443, "targetPort": 0}]}
    out = decoded(_object("v1", "Service", spec))["spec"]
    assert out["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    assert out["externalTrafficPolicy"] == "Cluster"
    assert out["allocateLoadBalancerNodePorts"] is True
    assert out["ports"][0]["targetPort"] == 443


def test_external_name_and_cluster_ip_with_external_ips() -> None:
    name = decoded(_object("v1", "Service", {"type": "ExternalName", "externalName": "x.example.com"}))[
        "spec"
    ]
    assert "internalTrafficPolicy" not in name
    exposed = decoded(_object("v1", "Service", {"externalIPs": ["192.0.2.1"], "sessionAffinityConfig": {}}))[
        "spec"
    ]
    assert exposed["externalTrafficPolicy"] == "Cluster"
    assert "sessionAffinityConfig" not in exposed  # dropped under sessionAffinity None


def test_service_selector_is_a_string_map() -> None:
    out = decoded(_object("v1", "Service", {"selector": {"app": None}}))
    assert out["spec"]["selector"] == {"app": ""}


def test_namespace_secret_and_claim() -> None:
    assert decoded(_object("v1", "Namespace", None))["metadata"]["labels"] == {
        "kubernetes.io/metadata.name": "x"
    }
    assert decoded(_object("v1", "Secret", None))["type"] == "Opaque"
    claim = decoded(_object("v1", "PersistentVolumeClaim", {"accessModes": ["ReadWriteOnce"]}))
    assert claim["status"] == {"phase": "Pending"}
    assert claim["spec"]["volumeMode"] == "Filesystem"


def test_an_older_api_version_is_decoded_but_not_defaulted() -> None:
    out = decoded(_object("extensions/v1beta1", "Deployment", {"template": _template()}, labels=None))
    assert out["metadata"] == {"name": "x"}
    assert "replicas" not in out["spec"]


def test_defaulting_twice_changes_nothing() -> None:
    for obj in (
        _object("apps/v1", "Deployment", {"template": _template()}),
        _object("batch/v1", "Job", {"template": _template()}),
        _object("v1", "Service", {"ports": [{"port": 80}], "sessionAffinity": "ClientIP"}),
        _object("v1", "Namespace", None),
    ):
        once = decoded(obj)
        assert decoded(once) == once


def test_an_invalid_manifest_is_left_for_validation() -> None:
    obj = _object("apps/v1", "Deployment", {"strategy": "fast", "template": {"spec": {"containers": "c"}}})
    out = decoded(obj)
    assert out["spec"]["strategy"] == "fast"
    assert out["spec"]["template"]["spec"]["containers"] == "c"


def test_generated_names() -> None:
    assert generated_names({"metadata": {"generateName": "job-"}}) == ("job-bbbbb", "job-99999")
    long = "a" * 70
    first, second = generated_names({"metadata": {"generateName": long}}) or ("", "")
    assert len(first) == len(second) == 63
    assert generated_names({"metadata": {"name": "x", "generateName": "job-"}}) is None
    assert generated_names({"metadata": {}}) is None


def test_a_generated_namespace_gets_its_name_label_once_named() -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"generateName": "team-"}}
    assert "labels" not in decoded(namespace)["metadata"]  # SetDefaults_Namespace needs a name


def test_decoding_follows_any_depth() -> None:
    # Go's decoder reads 10000 levels; the recursive decoding raised RecursionError at ~500.
    deep: dict[str, Any] = {"a": None}
    for _ in range(5000):
        deep = {"a": deep, "n": None}
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "binaryData": deep}
    value, depth = decoded(obj)["binaryData"], 0
    while value:  # compared level by level: `==` on it recurses too
        assert list(value) == ["a"]  # the nulls dropped at every level
        value, depth = value["a"], depth + 1
    assert (value, depth) == ({}, 5000)


def test_a_secrets_string_data_is_converted_into_its_data() -> None:
    # Convert_v1_Secret_To_core_Secret: stringData is written into data (over data's own
    # entries); the internal Secret has none, so the v1 object admission sees has no stringData.
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"a": "b2xk", "keep": "eA=="},
        "stringData": {"a": "new", "password": "hunter2", "empty": None},
    }
    out = decoded(secret)
    assert "stringData" not in out
    assert out["data"] == {"a": "bmV3", "keep": "eA==", "password": "aHVudGVyMg==", "empty": ""}
    only = decoded(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}}
    )
    assert only["data"] == {"k": "dg=="}
    assert "stringData" not in only


@pytest.mark.parametrize(
    ("written", "both"),
    [
        ({"serviceAccount": "old"}, "old"),
        ({"serviceAccountName": "new"}, "new"),
        ({"serviceAccountName": "new", "serviceAccount": "old"}, "new"),
        ({"serviceAccountName": "", "serviceAccount": "old"}, "old"),
    ],
)
def test_the_deprecated_service_account_is_converted_in_every_pod_spec(
    written: dict[str, str], both: str
) -> None:
    # Convert_v1_PodSpec_To_core_PodSpec takes serviceAccount where serviceAccountName is empty;
    # Convert_core_PodSpec_To_v1_PodSpec sets serviceAccount to serviceAccountName.
    pod = decoded(_object("v1", "Pod", {"containers": [dict(CONTAINER)], **written}))
    assert (pod["spec"]["serviceAccountName"], pod["spec"]["serviceAccount"]) == (both, both)
    template = _template()
    template["spec"].update(written)
    for kind, api_version in (("Deployment", "apps/v1"), ("Job", "batch/v1")):
        spec = decoded(_object(api_version, kind, {"template": copy.deepcopy(template)}))["spec"]
        assert spec["template"]["spec"]["serviceAccountName"] == both
        assert spec["template"]["spec"]["serviceAccount"] == both


def test_omitempty_zero_values_are_absent_as_to_unstructured_leaves_them_out() -> None:
    # runtime.DefaultUnstructuredConverter.ToUnstructured (admission CEL's `object`) leaves out
    # an omitempty field at its zero value: `has()` is false for these in the API server.
    container = {
        "name": "c",
        "image": "nginx:1.25",
        "resources": {"limits": {}, "requests": {}},
        "env": [],
        "ports": [{"containerPort": 80, "hostPort": 0, "name": ""}],
        "securityContext": {"privileged": False, "runAsUser": 0, "capabilities": {"drop": []}},
        "stdin": False,
        "workingDir": "",
    }
    spec = {
        "template": {
            "metadata": {"labels": {}, "annotations": {}},
            "spec": {
                "serviceAccountName": "",
                "imagePullSecrets": [],
                "nodeSelector": {},
                "hostNetwork": False,
                "automountServiceAccountToken": False,
                "containers": [container],
                "volumes": [{"name": "p", "projected": {"sources": []}}],
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}
                    }
                },
            },
        },
        "selector": {"matchLabels": {"a": "b"}, "matchExpressions": []},
        "minReadySeconds": 0,
        "paused": False,
    }
    out = decoded(_object("apps/v1", "Deployment", spec, labels={}, annotations={"a": ""}))
    assert "labels" not in out["metadata"]
    assert out["metadata"]["annotations"] == {"a": ""}  # not empty: kept, "" values too
    assert "minReadySeconds" not in out["spec"] and "paused" not in out["spec"]
    assert out["spec"]["selector"] == {"matchLabels": {"a": "b"}}
    template = out["spec"]["template"]
    assert template["metadata"] == {}  # a struct: kept, empty
    pod = template["spec"]
    for gone in ("serviceAccountName", "serviceAccount", "imagePullSecrets", "nodeSelector", "hostNetwork"):
        assert gone not in pod
    assert pod["automountServiceAccountToken"] is False  # *bool: kept
    assert pod["volumes"][0]["projected"]["sources"] == []  # no omitempty: kept
    assert pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": []
    }  # no omitempty: kept
    [c] = pod["containers"]
    assert c["resources"] == {}  # a struct: kept, its empty maps left out
    assert "env" not in c and "stdin" not in c and "workingDir" not in c
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]  # containerPort: no omitempty
    assert c["securityContext"] == {"privileged": False, "runAsUser": 0, "capabilities": {}}  # pointers


def test_omitempty_for_other_kinds_and_every_kinds_metadata() -> None:
    svc = decoded(_object("v1", "Service", {"ports": [], "externalIPs": [], "clusterIP": ""}, finalizers=[]))
    assert "ports" not in svc["spec"] and "externalIPs" not in svc["spec"] and "clusterIP" not in svc["spec"]
    assert "finalizers" not in svc["metadata"]
    cm = decoded(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {}}, "data": {}}
    )
    assert cm == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    # a kind the table does not cover keeps its fields; its metadata is ObjectMeta all the same
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "r", "annotations": {}},
        "rules": [],
    }
    assert decoded(role) == {**role, "metadata": {"name": "r"}}
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "c", "labels": {}},
        "spec": {"x": []},
    }
    assert decoded(crd) == {**crd, "metadata": {"name": "c"}}


def test_persistent_volume() -> None:
    # SetDefaults_PersistentVolume and the generated walk into its sources
    pv = decoded(
        _object(
            "v1", "PersistentVolume", {"hostPath": {"path": "/x"}, "storageClassName": "", "mountOptions": []}
        )
    )
    assert pv["spec"] == {
        "hostPath": {"path": "/x", "type": ""},
        "persistentVolumeReclaimPolicy": "Retain",
        "volumeMode": "Filesystem",
    }
    assert pv["status"] == {"phase": "Pending"}
    given = decoded(
        _object(
            "v1",
            "PersistentVolume",
            {"persistentVolumeReclaimPolicy": "Delete", "volumeMode": "Block", "rbd": {"image": "i"}},
        )
    )
    assert given["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert given["spec"]["volumeMode"] == "Block"
    assert given["spec"]["rbd"] == {
        "image": "i",
        "pool": "rbd",
        "user": "admin",
        "keyring": "/etc/ceph/keyring",
    }


def test_horizontal_pod_autoscaler() -> None:
    # autoscaling/v2 SetDefaults_HorizontalPodAutoscaler(Behavior)
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}
    hpa = decoded(
        _object(
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            {"scaleTargetRef": target, "maxReplicas": 5, "metrics": []},
        )
    )
    assert hpa["spec"]["minReplicas"] == 1
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
        }
    ]
    assert "behavior" not in hpa["spec"]
    spec = {
        "scaleTargetRef": target,
        "maxReplicas": 5,
        "minReplicas": 2,
        "behavior": {"scaleDown": {"selectPolicy": "Min"}},
    }
    hpa = decoded(_object("autoscaling/v2", "HorizontalPodAutoscaler", spec))
    assert hpa["spec"]["minReplicas"] == 2
    assert hpa["spec"]["behavior"] == {
        "scaleDown": {
            "selectPolicy": "Min",  # no stabilizationWindowSeconds: nil in Go's defaults
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
        },
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15},
            ],
        },
    }
    assert (
        "minReplicas" not in decoded(_object("autoscaling/v1", "HorizontalPodAutoscaler", {}))["spec"]
    )  # decoded only


def test_network_policy() -> None:
    # networking/v1 SetDefaults_NetworkPolicy (policyTypes) and _NetworkPolicyPort (protocol)
    np = decoded(
        _object(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            {"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]},
        )
    )
    assert np["spec"]["policyTypes"] == ["Ingress"]
    assert np["spec"]["ingress"] == [{"ports": [{"port": 80, "protocol": "TCP"}]}]
    np = decoded(
        _object("networking.k8s.io/v1", "NetworkPolicy", {"podSelector": {}, "ingress": [], "egress": [{}]})
    )
    assert np["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in np["spec"]  # omitempty: an empty list is left out
    assert np["spec"]["podSelector"] == {}


def test_rbac_storage_and_scheduling() -> None:
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "b"},
        "roleRef": {"kind": "Role", "name": "r"},
        "subjects": [
            {"kind": "User", "name": "u"},
            {"kind": "ServiceAccount", "name": "s", "apiGroup": "", "namespace": "n"},
        ],
    }
    out = decoded(binding)
    assert out["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
    assert out["subjects"] == [
        {"kind": "User", "name": "u", "apiGroup": "rbac.authorization.k8s.io"},
        {"kind": "ServiceAccount", "name": "s", "namespace": "n"},
    ]
    sc = decoded(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "s"},
            "provisioner": "p",
        }
    )
    assert (sc["reclaimPolicy"], sc["volumeBindingMode"]) == ("Delete", "Immediate")
    pc = decoded(
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": "p"},
            "value": 1,
            "globalDefault": False,
        }
    )
    assert pc["preemptionPolicy"] == "PreemptLowerPriority"
    assert "globalDefault" not in pc


@pytest.mark.parametrize(
    ("depth", "key", "deeper"),
    [
        (10, "a", False),
        (300, "a", False),
        (1000, "a", False),
        (1001, "a", True),
        (1001, 1, True),
        (10, 1, False),
    ],
)
def test_nested_deeper_counts_levels_whether_orjson_writes_the_value_or_not(
    depth: int, key: Any, deeper: bool
) -> None:
    # orjson answers for what it writes (up to 254 levels); deeper values and keys that are no
    # strings are walked.
    value: Any = "leaf"
    for n in range(depth):
        value = {key: value} if n % 2 else [value]
    assert nested_deeper(value, 1000) is deeper
