"""The small YAML reader behind the pod-manifest check."""

from __future__ import annotations

import pytest

from cni_rkt.validate.yamlsubset import YamlSubsetError, load_documents

MANIFEST = """\
# a comment
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    metadata:
      annotations:
        "rkt.alpha.kubernetes.io/stage1-name-override": 'coreos.com/rkt/stage1-kvm'
    spec:
      hostNetwork: yes   # YAML 1.1 boolean
      containers:
        - name: a
          args: ["x", "y"]
          securityContext: {"privileged": true}
        -
          name: b
      command: |
        line one
        line two
---
kind: Pod
metadata: {}
"""


def test_reads_the_subset_kubernetes_manifests_use():
    documents, positions = load_documents(MANIFEST)
    first, second = documents
    template = first["spec"]["template"]
    assert template["metadata"]["annotations"] == {
        "rkt.alpha.kubernetes.io/stage1-name-override": "coreos.com/rkt/stage1-kvm"}
    assert template["spec"]["hostNetwork"] is True
    assert template["spec"]["containers"] == [
        {"name": "a", "args": ["x", "y"], "securityContext": {"privileged": True}}, {"name": "b"}]
    assert template["spec"]["command"] == "line one\nline two"
    assert second == {"kind": "Pod", "metadata": {}}
    assert positions[(0, "spec", "template", "spec", "hostNetwork")] == (10, 7)
    assert positions[(0, "spec", "template", "spec", "containers", 1)] == (15, 9)


def test_json_manifests_are_accepted():
    documents, _ = load_documents('{"kind": "Pod", "spec": {"containers": []}}')
    assert documents == [{"kind": "Pod", "spec": {"containers": []}}]


@pytest.mark.parametrize("text, line", [
    ("a: &x 1\n", 1),
    ("a:\n  b: 1\n c: 2\n", 3),
    ("a: [1,\n  2]\n", 1),
])
def test_unsupported_yaml_names_the_line(text, line):
    with pytest.raises(YamlSubsetError) as caught:
        load_documents(text)
    assert caught.value.line == line
