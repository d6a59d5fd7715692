"""Turn manifest files into typed resources, in apply order, the way `kubectl apply -f` would.

Rejects what the API server or Istio's webhook would reject (unknown kind or apiVersion,
unknown fields, invalid names, weights, durations) as InputErrors with file:line.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from meshlab.errors import ErrorCollector, InputError, Location
from meshlab.load import istio, k8s
from meshlab.load.istio.common import ISTIO_NETWORKING_VERSIONS, SECURITY_VERSIONS
from meshlab.load.kinds import ServedKinds, Unmodelled, is_istio_install, served_kinds
from meshlab.load.schema import validate
from meshlab.load.yamlio import PathKey, YamlDocument, load_documents
from meshlab.records import dataclass

# (apiVersion, kind) -> (module, model name). Looked up by name on use: `istio` imports a
# kind's schema module only when a manifest of that kind is read (load/istio/__init__.py).
_MODELS: dict[tuple[str, str], tuple[ModuleType, str]] = {
    ("apps/v1", "Deployment"): (k8s, "Deployment"),
    ("v1", "Service"): (k8s, "Service"),
    ("v1", "Pod"): (k8s, "Pod"),
    **{
        (v, kind): (istio, kind)
        for v in ISTIO_NETWORKING_VERSIONS
        for kind in ("VirtualService", "DestinationRule", "Gateway", "ServiceEntry", "Sidecar")
    },
    **{(v, "PeerAuthentication"): (istio, "PeerAuthentication") for v in SECURITY_VERSIONS},
    **{
        (v, kind): (istio, "OtherIstioNetworking")
        for v in ISTIO_NETWORKING_VERSIONS
        for kind in ("WorkloadEntry", "WorkloadGroup")
    },
    **{
        ("v1", kind): (k8s, "Passive")
        for kind in ("Namespace", "ConfigMap", "Secret", "ServiceAccount")
    },
}
_KNOWN_KINDS = {kind: sorted(v for v, k in _MODELS if k == kind) for _, kind in _MODELS}
_NAMESPACED_EXCEPTIONS = {"Namespace"}
# Istio rules a lab writes, simulated wherever they live (a mesh-wide PeerAuthentication is
# in istio-system, the root namespace)
_ISTIO_RULES = ("networking.istio.io/", "security.istio.io/")


# (namespace, name) of the ConfigMap holding Istio's MeshConfig, which istiod reads
MESH_CONFIG = ("istio-system", "istio")


@dataclass(frozen=True)
class Resource:
    """One applied object: its typed body plus where it was written."""

    kind: str
    name: str
    namespace: str
    body: Any
    document: YamlDocument
    at: PathKey
    order: int
    install: bool = False  # part of Istio's install (istio-system, the installer's labels)

    @property
    def simulated(self) -> bool:
        """Whether a backend runs this object. Kinds meshlab does not model are accepted and
        listed only; so are Istio's own install (istiod, the gateways, the addons: meshlab
        plays istiod) and the ConfigMaps, Secrets... that come with it. Istio rules stay,
        wherever they are written."""
        if isinstance(self.body, Unmodelled):
            return False
        if (self.kind, self.namespace, self.name) == ("ConfigMap", *MESH_CONFIG):
            return True  # the mesh config istiod reads (mesh/meshconfig.py)
        return not self.install or self.body.apiVersion.startswith(_ISTIO_RULES)

    @property
    def ref(self) -> str:
        """`VirtualService default/reviews`: how istioctl names an object."""
        return f"{self.kind} {self.namespace}/{self.name}"

    @property
    def location(self) -> Location:
        return self.document.locate(self.at)

    def locate(self, *path: str | int) -> Location:
        """Position of a field of this object, e.g. `locate("spec", "http", 0)`."""
        return self.document.locate((*self.at, *path))


@dataclass(frozen=True)
class Rejected:
    """An object the API server or Istio's webhook would refuse at apply time, and why."""

    kind: str | None
    namespace: str | None
    name: str | None
    errors: tuple[InputError, ...]
    raw: Any = None  # the object as written, for what other objects may refer to in it

    @property
    def ref(self) -> str | None:
        """`VirtualService default/reviews` when the object says that much about itself."""
        if not self.kind or not self.name:
            return None
        return (
            f"{self.kind} {self.namespace}/{self.name}"
            if self.namespace
            else f"{self.kind} {self.name}"
        )


def load_manifests(files: Sequence[Path], default_namespace: str = "default") -> list[Resource]:
    """Every object of every file, validated, in apply order; all errors reported together."""
    errors = ErrorCollector()
    documents = _documents(files, errors)
    resources, rejected = _load_objects(documents, default_namespace)
    for refused in rejected:
        errors.errors.extend(refused.errors)
    errors.raise_if_any()
    return resources


def load_manifests_partial(
    files: Sequence[Path], default_namespace: str = "default"
) -> tuple[list[Resource], list[Rejected]]:
    """Like load_manifests, but objects that would be refused are returned, not raised, so an
    analysis can report them and go on with the rest. Unreadable files still raise."""
    errors = ErrorCollector()
    documents = _documents(files, errors)
    errors.raise_if_any()
    return _load_objects(documents, default_namespace)


def _documents(files: Sequence[Path], errors: ErrorCollector) -> list[YamlDocument]:
    documents: list[YamlDocument] = []
    for path in files:
        with errors.collecting():
            documents += load_documents(path)
    return documents


def _load_objects(
    documents: list[YamlDocument], default_namespace: str
) -> tuple[list[Resource], list[Rejected]]:
    resources: dict[tuple[str, str, str], Resource] = {}
    rejected: list[Rejected] = []
    apply_order = itertools.count()
    objects = [(document, at, raw) for document in documents for at, raw in _objects(document)]
    served = served_kinds(raw for _, _, raw in objects)
    for document, at, raw in objects:
        errors = ErrorCollector()
        with errors.collecting():
            resource = _typed(raw, document, at, next(apply_order), default_namespace, served)
            # `kubectl apply` of the same object twice: the later one is what remains.
            resources.pop((resource.kind, resource.namespace, resource.name), None)
            resources[(resource.kind, resource.namespace, resource.name)] = resource
        if errors.errors:
            rejected.append(_rejected(raw, default_namespace, errors.errors))
    return sorted(resources.values(), key=lambda r: r.order), rejected


def _rejected(raw: Any, default_namespace: str, errors: list[InputError]) -> Rejected:
    raw = raw if isinstance(raw, dict) else {}
    metadata = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
    kind, name, namespace = raw.get("kind"), metadata.get("name"), metadata.get("namespace")
    kind = kind if isinstance(kind, str) and kind else None
    if kind in _NAMESPACED_EXCEPTIONS or served_kinds(()).cluster_scoped("", kind or ""):
        namespace = ""
    elif not isinstance(namespace, str) or not namespace:
        namespace = default_namespace
    name = name if isinstance(name, str) else None
    return Rejected(kind, namespace, name, tuple(errors), without_nulls(raw))


def _objects(document: YamlDocument) -> Iterable[tuple[PathKey, Any]]:
    """The objects of one document; a `kind: List` is flattened like kubectl does."""
    data = document.data
    if (
        isinstance(data, dict)
        and data.get("kind") == "List"
        and isinstance(data.get("items"), list)
    ):
        for i, item in enumerate(data["items"]):
            yield ("items", i), item
    else:
        yield (), data


def _typed(
    raw: Any, document: YamlDocument, at: PathKey, order: int, namespace: str, served: ServedKinds
) -> Resource:
    where = document.locate(at)
    if not isinstance(raw, dict):
        raise InputError(
            "a manifest document must be a mapping with apiVersion, kind, metadata", where
        )
    raw = without_nulls(raw)
    api_version, kind = raw.get("apiVersion"), raw.get("kind")
    if not isinstance(kind, str) or not kind:
        raise InputError('missing required field "kind"', where)
    if not isinstance(api_version, str) or not api_version:
        raise InputError('missing required field "apiVersion"', where)
    model = _model(api_version, kind)
    if model is None and served.serves(api_version, kind):
        model = Unmodelled
    if model is None:
        raise _unknown_type(api_version, kind, document, at, served)
    body = validate(model, raw, document, at, what=kind)
    metadata = body.metadata  # type: ignore[attr-defined]
    if not metadata.name:
        raise InputError(
            f'{kind}: missing required field "metadata.name"', document.locate((*at, "metadata"))
        )
    cluster_scoped = kind in _NAMESPACED_EXCEPTIONS or served.cluster_scoped(api_version, kind)
    object_namespace = "" if cluster_scoped else (metadata.namespace or namespace)
    install = is_istio_install(kind, object_namespace, metadata, body)
    if model is Unmodelled and kind in _KNOWN_KINDS:
        # The Gateway API's Gateway is not Istio's: named by its group, as kubectl does
        # (gateway.gateway.networking.k8s.io), it is another object and no analyzer reads it.
        kind = f"{kind}.{api_version.rpartition('/')[0]}"
    return Resource(kind, metadata.name, object_namespace, body, document, at, order, install)


def _model(api_version: str, kind: str) -> type[BaseModel] | None:
    where = _MODELS.get((api_version, kind))
    if where is None:
        return None
    module, name = where
    model: type[BaseModel] = getattr(module, name)
    return model


def without_nulls(value: Any) -> Any:
    """The object as the API server decodes it: a key whose value is null (`annotations:`
    with nothing after it) is the same as no key at all, so kubectl accepts it."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def _unknown_type(
    api_version: str, kind: str, document: YamlDocument, at: PathKey, served: ServedKinds
) -> InputError:
    if kind in _KNOWN_KINDS or served.versions_of(kind):
        versions = ", ".join(sorted({*_KNOWN_KINDS.get(kind, []), *served.versions_of(kind)}))
        return InputError(
            f'no matches for kind "{kind}" in version "{api_version}"',
            document.locate((*at, "apiVersion")),
            hint=f"{kind} is served as {versions}",
        )
    known = ", ".join(sorted(_KNOWN_KINDS))
    return InputError(
        f'unknown kind "{kind}" ({api_version}): meshlab knows {known}',
        document.locate((*at, "kind")),
        hint="Kubernetes' built-in kinds and Istio's are accepted too, and custom kinds "
        "whose CustomResourceDefinition is in the input (as the API server needs it)",
    )
