"""The Kubernetes kinds a lab uses, as strict schemas (the fields meshlab reads are typed).

Fields meshlab never reads are still named, so a typo such as `contianers` is an unknown
field, as it is for the API server with strict field validation; their values stay `Any`.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from meshlab.load.schema import Strict

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def check_dns1123_label(value: str, what: str = "name") -> str:
    if len(value) > 63 or not _DNS1123_LABEL.fullmatch(value):
        raise ValueError(
            f"{what} {value!r} must be a DNS-1123 label: lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters"
        )
    return value


def check_dns1123_subdomain(value: str, what: str = "name") -> str:
    if len(value) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(value):
        raise ValueError(
            f"{what} {value!r} must be a DNS-1123 subdomain: lowercase letters, digits, '-' "
            "and '.', starting and ending with a letter or digit"
        )
    return value


# Kubernetes caps an object's annotations at 256 KiB in all; labels have per-entry limits
# only, so meshlab caps their total too: every pod's labels ride on its stand-in's command
# line, which the kernel limits (E2BIG).
MAX_ANNOTATIONS_BYTES = 256 * 1024
MAX_LABELS_BYTES = 64 * 1024
# A Docker reference: repository up to 255 characters, a tag up to 128, a digest.
MAX_IMAGE_LENGTH = 512
_IMAGE = re.compile(r"[^\s\x00-\x1f\x7f-\x9f]+")


def _total_bytes(entries: dict[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in entries.items())


def check_labels(labels: dict[str, str]) -> dict[str, str]:
    if _total_bytes(labels) > MAX_LABELS_BYTES:
        raise ValueError(
            f"labels: {len(labels)} labels, {_total_bytes(labels)} bytes in all; "
            f"meshlab accepts up to {MAX_LABELS_BYTES} bytes of labels per object"
        )
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if prefix:
            check_dns1123_subdomain(prefix, "label prefix")
        if len(name) > 63 or not _LABEL_NAME.fullmatch(name):
            raise ValueError(f"label key {key!r} is not a valid Kubernetes label name")
        if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
            raise ValueError(
                f"label {key}={value!r} is not a valid label value (at most 63 characters: "
                "letters, digits, '-', '_', '.', starting and ending alphanumeric)"
            )
    return labels


class ObjectMeta(Strict):
    name: str | None = None
    generateName: str | None = None
    namespace: str | None = None
    labels: dict[str, str] = Field(default={})
    annotations: dict[str, str] = Field(default={})
    creationTimestamp: str | None = None
    uid: Any = None
    resourceVersion: Any = None
    generation: Any = None
    deletionTimestamp: Any = None
    deletionGracePeriodSeconds: Any = None
    ownerReferences: Any = None
    finalizers: Any = None
    managedFields: Any = None
    selfLink: Any = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else check_dns1123_subdomain(value, "name")

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        return None if value is None else check_dns1123_label(value, "namespace")

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        return check_labels(value)

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, value: dict[str, str]) -> dict[str, str]:
        if _total_bytes(value) > MAX_ANNOTATIONS_BYTES:
            raise ValueError(
                f"annotations: {_total_bytes(value)} bytes in all; the API server accepts up "
                f"to {MAX_ANNOTATIONS_BYTES} (256 KiB)"
            )
        return value


class TemplateMeta(ObjectMeta):
    """Pod template metadata: same fields, the name is optional."""


class ServiceMeta(ObjectMeta):
    """A Service's name is also its DNS name: a DNS-1035 label, as the API server insists."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 63 or not _DNS1035_LABEL.fullmatch(value)):
            raise ValueError(
                f"Service name {value!r} must be a DNS-1035 label: lowercase letters, digits "
                "and '-', starting with a letter, ending with a letter or digit, at most 63 "
                "characters"
            )
        return value


class ContainerPort(Strict):
    containerPort: int = Field(ge=1, le=65535)
    name: str | None = None
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    hostPort: int | None = None
    hostIP: str | None = None


class Container(Strict):
    name: str
    image: str | None = None
    ports: list[ContainerPort] = Field(default=[])
    args: Any = None
    command: Any = None
    env: Any = None
    envFrom: Any = None
    imagePullPolicy: Literal["Always", "IfNotPresent", "Never"] | None = None
    lifecycle: Any = None
    livenessProbe: Any = None
    readinessProbe: Any = None
    resizePolicy: Any = None
    resources: Any = None
    restartPolicy: Any = None
    securityContext: Any = None
    startupProbe: Any = None
    stdin: Any = None
    stdinOnce: Any = None
    terminationMessagePath: Any = None
    terminationMessagePolicy: Any = None
    tty: Any = None
    volumeDevices: Any = None
    volumeMounts: Any = None
    workingDir: Any = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_dns1123_label(value, "container name")

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > MAX_IMAGE_LENGTH or not _IMAGE.fullmatch(value)):
            shown = value if len(value) <= 60 else value[:60] + "..."
            raise ValueError(
                f"image {shown!r} is not an image reference (no spaces or control "
                f"characters, at most {MAX_IMAGE_LENGTH} characters)"
            )
        return value


class PodSpec(Strict):
    containers: list[Container] = Field(min_length=1)
    initContainers: list[Container] = Field(default=[])
    activeDeadlineSeconds: Any = None
    affinity: Any = None
    automountServiceAccountToken: Any = None
    dnsConfig: Any = None
    dnsPolicy: Any = None
    enableServiceLinks: Any = None
    ephemeralContainers: Any = None
    hostAliases: Any = None
    hostIPC: Any = None
    hostNetwork: Any = None
    hostPID: Any = None
    hostUsers: Any = None
    hostname: Any = None
    imagePullSecrets: Any = None
    nodeName: Any = None
    nodeSelector: Any = None
    os: Any = None
    overhead: Any = None
    preemptionPolicy: Any = None
    priority: Any = None
    priorityClassName: Any = None
    readinessGates: Any = None
    resourceClaims: Any = None
    resources: Any = None
    restartPolicy: Any = None
    runtimeClassName: Any = None
    schedulerName: Any = None
    schedulingGates: Any = None
    securityContext: Any = None
    serviceAccount: Any = None
    serviceAccountName: Any = None
    setHostnameAsFQDN: Any = None
    shareProcessNamespace: Any = None
    subdomain: Any = None
    terminationGracePeriodSeconds: Any = None
    tolerations: Any = None
    topologySpreadConstraints: Any = None
    volumes: Any = None


class PodTemplate(Strict):
    metadata: TemplateMeta = Field(default_factory=TemplateMeta)
    spec: PodSpec


class LabelSelectorRequirement(Strict):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(default=[])


class LabelSelector(Strict):
    matchLabels: dict[str, str] = Field(default={})
    matchExpressions: list[LabelSelectorRequirement] = Field(default=[])

    def matches(self, labels: dict[str, str]) -> bool:
        if any(labels.get(k) != v for k, v in self.matchLabels.items()):
            return False
        return all(_requirement_holds(req, labels) for req in self.matchExpressions)


def _requirement_holds(req: LabelSelectorRequirement, labels: dict[str, str]) -> bool:
    present = req.key in labels
    if req.operator == "Exists":
        return present
    if req.operator == "DoesNotExist":
        return not present
    if req.operator == "In":
        return present and labels[req.key] in req.values
    return not present or labels[req.key] not in req.values


class DeploymentSpec(Strict):
    selector: LabelSelector
    template: PodTemplate
    replicas: int = Field(default=1, ge=0)
    minReadySeconds: Any = None
    paused: Any = None
    progressDeadlineSeconds: Any = None
    revisionHistoryLimit: Any = None
    strategy: Any = None

    @model_validator(mode="after")
    def _selector_matches_template(self) -> DeploymentSpec:
        if not self.selector.matchLabels and not self.selector.matchExpressions:
            raise ValueError("selector: empty selector is invalid for apps/v1 Deployments")
        if not self.selector.matches(self.template.metadata.labels):
            raise ValueError(
                "selector does not match template labels: every pod this Deployment creates "
                "must carry the selector's labels"
            )
        return self


class ServicePort(Strict):
    port: int = Field(ge=1, le=65535)
    name: str | None = None
    targetPort: int | str | None = None
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    appProtocol: str | None = None
    nodePort: int | None = None


class ServiceSpec(Strict):
    ports: list[ServicePort] = Field(default=[])
    selector: dict[str, str] | None = None
    type: Literal["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"] = "ClusterIP"
    clusterIP: str | None = None
    clusterIPs: Any = None
    externalName: str | None = None
    externalIPs: Any = None
    externalTrafficPolicy: Any = None
    healthCheckNodePort: Any = None
    internalTrafficPolicy: Any = None
    ipFamilies: Any = None
    ipFamilyPolicy: Any = None
    loadBalancerClass: Any = None
    loadBalancerIP: Any = None
    loadBalancerSourceRanges: Any = None
    publishNotReadyAddresses: Any = None
    sessionAffinity: Any = None
    sessionAffinityConfig: Any = None
    trafficDistribution: Any = None
    allocateLoadBalancerNodePorts: Any = None

    @model_validator(mode="after")
    def _ports(self) -> ServiceSpec:
        if self.type != "ExternalName" and not self.ports:
            raise ValueError("ports: a Service needs at least one port (except ExternalName)")
        if len(self.ports) > 1 and any(p.name is None for p in self.ports):
            raise ValueError("ports: every port must have a name when a Service has several")
        names = [p.name for p in self.ports if p.name]
        if len(names) != len(set(names)):
            raise ValueError("ports: port names must be unique")
        for p in self.ports:
            if p.name:
                check_dns1123_label(p.name, "port name")
        return self


class Deployment(Strict):
    apiVersion: Literal["apps/v1"]
    kind: Literal["Deployment"]
    metadata: ObjectMeta
    spec: DeploymentSpec
    status: Any = None


class Pod(Strict):
    apiVersion: Literal["v1"]
    kind: Literal["Pod"]
    metadata: ObjectMeta
    spec: PodSpec
    status: Any = None


class Service(Strict):
    apiVersion: Literal["v1"]
    kind: Literal["Service"]
    metadata: ServiceMeta
    spec: ServiceSpec
    status: Any = None


class Passive(Strict):
    """Kinds a lab may carry that meshlab does not simulate (Namespace, ConfigMap, ...)."""

    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: Any = None
    data: Any = None
    stringData: Any = None
    binaryData: Any = None
    type: Any = None
    immutable: Any = None
    status: Any = None
    secrets: Any = None
    imagePullSecrets: Any = None
    automountServiceAccountToken: Any = None
