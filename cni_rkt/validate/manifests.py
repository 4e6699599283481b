"""Kubernetes pod manifests and rkt's stage1 (the rkt/Kubernetes guide's rules).

A pod annotated `rkt.alpha.kubernetes.io/stage1-name-override` must run its containers
privileged, and a pod on the KVM stage1 must use rkt's contained network (no hostNetwork).
Pods, and workloads with a pod template (Deployment, DaemonSet, ...), are checked.
"""

from __future__ import annotations

import json

from cni_rkt.validate.findings import Finding
from cni_rkt.validate.loader import read_text
from cni_rkt.validate.rules import RULES
from cni_rkt.validate.yamlsubset import YamlSubsetError, load_documents

STAGE1_ANNOTATION = "rkt.alpha.kubernetes.io/stage1-name-override"


def check_manifest(path: str, sources: dict[str, str]) -> list[Finding]:
    text = read_text(path)
    sources[path] = text
    try:
        documents, positions = load_documents(text)
    except YamlSubsetError as exc:
        return [_finding(path, (exc.line, 1), "K8S602", f"cannot read the manifest: {exc}")]
    except json.JSONDecodeError as exc:
        return [_finding(path, (exc.lineno, exc.colno), "K8S602", f"cannot read the manifest: {exc.msg}")]
    findings = []
    for index, document in enumerate(documents):
        for path_prefix, metadata, spec in pod_specs(document, (index,)):
            findings.extend(check_pod(path, positions, path_prefix, metadata, spec))
    return findings


def pod_specs(document: object, prefix: tuple) -> list[tuple[tuple, dict, dict]]:
    """(key path, metadata, pod spec) of a Pod, or of a workload's pod template."""
    if not isinstance(document, dict) or not isinstance(document.get("spec"), dict):
        return []
    if document.get("kind") == "Pod":
        return [(prefix, _dict(document.get("metadata")), document["spec"])]
    template = document["spec"].get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        return [(prefix + ("spec", "template"), _dict(template.get("metadata")), template["spec"])]
    return []


def check_pod(path: str, positions: dict, prefix: tuple, metadata: dict, spec: dict) -> list[Finding]:
    stage1 = _dict(metadata.get("annotations")).get(STAGE1_ANNOTATION)
    if not isinstance(stage1, str):
        return []
    findings = []
    annotation_at = positions.get(prefix + ("metadata", "annotations", STAGE1_ANNOTATION), (1, 1))
    for kind in ("containers", "initContainers"):
        containers = spec.get(kind)
        for index, container in enumerate(containers if isinstance(containers, list) else []):
            if not isinstance(container, dict):
                continue
            privileged = _dict(container.get("securityContext")).get("privileged")
            if privileged is not True:
                where = prefix + ("spec", kind, index)
                at = positions.get(where + ("securityContext", "privileged"), positions.get(where, annotation_at))
                findings.append(_finding(path, at, "K8S600", f"container \"{container.get('name', index)}\" of a "
                                         f"pod with {STAGE1_ANNOTATION}={stage1} must set "
                                         "securityContext.privileged: true (rkt runs it in its own stage1)"))
    if "kvm" in stage1.lower() and spec.get("hostNetwork") is True:
        at = positions.get(prefix + ("spec", "hostNetwork"), annotation_at)
        findings.append(_finding(path, at, "K8S601", f"the pod uses the KVM stage1 ({stage1}) with hostNetwork: "
                                 "true; KVM pods need rkt's contained network (rkt: flavor kvm requires private "
                                 "network configuration)"))
    return findings


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _finding(path: str, at: tuple[int, int], rule: str, message: str) -> Finding:
    return Finding(path, "", at[0], at[1], RULES[rule].severity, rule, message)
