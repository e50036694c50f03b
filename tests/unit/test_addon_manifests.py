"""Vendor manifests as they are downloaded, and a failed ``kubectl apply`` explained (pure).

The kubectl texts below are what the real kubectl (1.27 and 1.33 alike) printed against the
lab's API double; tests/unit/test_lab_kubectl.py runs the real binary to keep them honest.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from k8slk_ops.cluster import addonrecord
from k8slk_ops.inventory import load_inventory
from k8slk_ops.inventory.addons import Addon, manifest_layout, near_miss
from k8slk_ops.kubeadm.apply import MAX_LINES, parse_apply_output
from k8slk_ops.output.events import NodeReport, Outcome, RunReport
from k8slk_ops.output.redact import REPLACEMENT, Redactor
from k8slk_ops.output.report import JsonReporter, LogFileReporter, PlainReporter
from tests.unit.test_addons import inventory

# kube-router's daemonset manifest, cut down: its shell snippet uses ${TMP}, and an old copy
# still says extensions/v1beta1.
KUBE_ROUTER = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: kube-router
  namespace: kube-system
---
apiVersion: extensions/v1beta1
kind: DaemonSet
metadata:
  name: kube-router
  namespace: kube-system
spec:
  template:
    spec:
      initContainers:
      - name: install-cni
        command: [/bin/sh, -c, 'TMP=/etc/cni/net.d/.tmp-kuberouter-cfg; cp x ${TMP}; mv ${TMP} y']
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
"""
MAPPING_DS = ('resource mapping not found for name: "kube-router" namespace: "kube-system" from '
              '"STDIN": no matches for kind "DaemonSet" in version "extensions/v1beta1"')
MAPPING_W = ('resource mapping not found for name: "w" namespace: "" from "STDIN": no matches '
             'for kind "Widget" in version "example.com/v1"')
HINT = "ensure CRDs are installed first"


def addon(tmp_path: Path, text: str, name: str = "kube-router.yaml") -> Addon:
    (tmp_path / name).write_text(text)
    (loaded,) = load_inventory(inventory(tmp_path, f"[{name}]")).addon_manifests
    return loaded


# -- placeholders ----------------------------------------------------------------------------


def test_known_placeholders_are_filled_in_and_unknown_ones_left_as_written(
    tmp_path: Path,
) -> None:
    text = KUBE_ROUTER + "  cidr: ${podSubnet}\n  shell: ${HOME} ${KUBE_ROUTER_CNI_CONF_FILE}\n"
    loaded = addon(tmp_path, text)
    assert loaded.text == KUBE_ROUTER + "  cidr: 10.244.0.0/16\n  shell: ${HOME} " \
                                        "${KUBE_ROUTER_CNI_CONF_FILE}\n"
    assert "cp x ${TMP}; mv ${TMP} y" in loaded.text
    assert loaded.warnings == ()


def test_an_unclosed_placeholder_is_left_as_written(tmp_path: Path) -> None:
    assert addon(tmp_path, "a: ${podSubnet\nb: ${\n").text == "a: ${podSubnet\nb: ${\n"


def test_the_escape_is_a_literal_dollar_brace(tmp_path: Path) -> None:
    loaded = addon(tmp_path, "a: $${TMP}\nb: $${podSubnet}\nc: $$ and $x\n")
    assert loaded.text == "a: ${TMP}\nb: ${podSubnet}\nc: $$ and $x\n"
    assert loaded.warnings == ()


def test_a_near_miss_of_a_placeholder_warns_at_its_line_and_is_left_as_written(
    tmp_path: Path,
) -> None:
    loaded = addon(tmp_path, "a: 1\nb: x-${podSubet}\nc: ${PodSubnet}\nd: ${TMP}\n")
    assert loaded.text == "a: 1\nb: x-${podSubet}\nc: ${PodSubnet}\nd: ${TMP}\n"
    path = tmp_path / "kube-router.yaml"
    first, second = loaded.warnings
    assert first.startswith(f"WARNING: {path}:2:6: ${{podSubet}} is left as written; if "
                            "${podSubnet} was meant, spell it so")
    assert second.startswith(f"WARNING: {path}:3:4: ${{PodSubnet}} is left as written")
    assert "${serviceSubnet}" in first  # the names the tool knows


@pytest.mark.parametrize(("name", "meant"), [
    ("podSubet", "podSubnet"), ("podSubnets", "podSubnet"), ("PODSUBNET", "podSubnet"),
    ("POD_SUBNET", "podSubnet"), ("clustername", "clusterName"),
    ("kubernetesVersoin", "kubernetesVersion"), ("controlPlaneEndpiont", "controlPlaneEndpoint"),
    ("TMP", None), ("HOME", None), ("NODE_NAME", None), ("CALICO_IPV4POOL_CIDR", None),
    ("KUBE_ROUTER_CNI_CONF_FILE", None), ("podCIDR", None), ("", None),
])
def test_near_misses(name: str, meant: str | None) -> None:
    assert near_miss(name) == meant


def test_inventory_check_prints_the_near_miss(tmp_path: Path) -> None:
    from tests.unit.clirun import K8slk

    (tmp_path / "cni.yaml").write_text("cidr: ${podSubet}\n")
    run = K8slk(tmp_path)("inventory", "check", inventory(tmp_path, "[cni.yaml]"))
    assert run.code == 0, run.why()
    assert f"{tmp_path / 'cni.yaml'}:1:7: ${{podSubet}} is left as written" in run.stderr


# -- where a manifest's objects are ----------------------------------------------------------


def test_the_layout_gives_each_documents_object_and_line() -> None:
    layout = manifest_layout("# header\n---\n" + KUBE_ROUTER + "---\n---\nkind: [\n")
    ds = layout.objects[1]
    assert (ds.document, ds.line, ds.kind, ds.api_version, ds.name, ds.namespace) == (
        2, 9, "DaemonSet", "extensions/v1beta1", "kube-router", "kube-system")
    assert ds.label == "DaemonSet kube-system/kube-router"
    assert layout.objects[2].label == "Widget w"
    assert not layout.objects[3].mapping  # the empty document
    assert layout.unreadable_line == 27


# -- a failed apply explained ----------------------------------------------------------------


def explain(tmp_path: Path, stdout: str, stderr: str, text: str = KUBE_ROUTER
            ) -> addonrecord.ApplyFailure:
    loaded = addon(tmp_path, text)
    return addonrecord.explain_failure(loaded.name, 1, stdout.encode(), stderr.encode(), loaded)


def test_a_mapping_error_names_the_object_its_file_line_and_keeps_every_line(
    tmp_path: Path,
) -> None:
    stderr = f"error: {MAPPING_DS}\n{HINT}\n"
    failure = explain(tmp_path, "serviceaccount/kube-router created\nwidget.example.com/w created\n",
                      stderr)
    (ds,) = failure.failed
    assert (ds.label, ds.where) == ("DaemonSet kube-system/kube-router",
                                    "kube-router.yaml:7, document 2")
    assert ds.cause == f'no matches for kind "DaemonSet" in version "extensions/v1beta1"; {HINT}'
    message = failure.message()
    assert message.startswith(
        "kubectl apply of kube-router.yaml failed (exit 1): DaemonSet kube-system/kube-router "
        '(kube-router.yaml:7, document 2): no matches for kind "DaemonSet" in version '
        f'"extensions/v1beta1"; {HINT}')
    assert "fix the manifest" in message
    assert failure.report_lines() == (
        f"error: {MAPPING_DS}", HINT,
        "failed: DaemonSet kube-system/kube-router at kube-router.yaml:7, document 2")


def test_several_errors_each_name_their_object(tmp_path: Path) -> None:
    stderr = f"{MAPPING_DS}\n{HINT}\n{MAPPING_W}\n{HINT}\n"
    failure = explain(tmp_path, "serviceaccount/kube-router created\n", stderr)
    assert [(f.label, f.where) for f in failure.failed] == [
        ("DaemonSet kube-system/kube-router", "kube-router.yaml:7, document 2"),
        ("Widget w", "kube-router.yaml:19, document 3")]
    assert failure.report_lines()[:4] == (MAPPING_DS, HINT, MAPPING_W, HINT)
    assert failure.not_applied == ()


def test_server_errors_are_tied_to_the_documents_kubectl_did_not_report(tmp_path: Path) -> None:
    text = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lost, namespace: nowhere}\n---\n"
            "apiVersion: extensions/v1beta1\nkind: DaemonSet\nmetadata: {name: kube-router, "
            "namespace: kube-system}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine, "
            "namespace: kube-system}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: lost2, "
            "namespace: nowhere}\n")
    server = 'Error from server (NotFound): error when creating "STDIN": namespaces "nowhere" not found'
    failure = explain(tmp_path, "configmap/fine created\n",
                      f"{MAPPING_DS}\n{HINT}\n{server}\n{server}\n", text)
    assert [(f.label, f.where, f.cause) for f in failure.failed] == [
        ("DaemonSet kube-system/kube-router", "kube-router.yaml:5, document 2",
         f'no matches for kind "DaemonSet" in version "extensions/v1beta1"; {HINT}'),
        ("ConfigMap nowhere/lost", "kube-router.yaml:1, document 1",
         'Error from server (NotFound): namespaces "nowhere" not found'),
        ("ConfigMap nowhere/lost2", "kube-router.yaml:13, document 4",
         'Error from server (NotFound): namespaces "nowhere" not found')]


def test_a_parse_error_lists_what_was_not_applied_and_where_yaml_broke(tmp_path: Path) -> None:
    text = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a}\n---\nkind: [\n"
    stderr = ("error: error parsing STDIN: error converting YAML to JSON: yaml: line 1: did not "
              "find expected node content\n")
    failure = explain(tmp_path, "serviceaccount/a unchanged\n", stderr, text)
    assert failure.failed == ()
    assert failure.unplaced == (
        "error parsing STDIN: error converting YAML to JSON: yaml: line 1: did not find "
        "expected node content", "(the manifest is not valid YAML at kube-router.yaml:5)")


def test_a_failed_patch_names_its_object_and_not_the_patch(tmp_path: Path) -> None:
    stderr = (
        "Error from server (Invalid): error when applying patch:\n"
        '{"metadata":{"annotations":{"x":"y"}}}\nto:\n'
        'Resource: "extensions/v1beta1, Resource=daemonsets", GroupVersionKind: '
        '"extensions/v1beta1, Kind=DaemonSet"\nName: "kube-router", Namespace: "kube-system"\n'
        'for: "STDIN": error when patching "STDIN": DaemonSet.extensions "kube-router" is '
        "invalid: spec.template.spec.containers: Required value\n")
    failure = explain(tmp_path, "serviceaccount/kube-router unchanged\nwidget.example.com/w "
                      "unchanged\n", stderr)
    (ds,) = failure.failed
    assert ds.where == "kube-router.yaml:7, document 2"
    assert ds.cause == ('Error from server (Invalid): DaemonSet.extensions "kube-router" is '
                        "invalid: spec.template.spec.containers: Required value")
    assert len(failure.lines) == 6


def test_without_a_manifest_kubectls_names_are_used() -> None:
    failure = addonrecord.explain_failure("the record", 1, b"", f"error: {MAPPING_W}\n".encode(),
                                          None)
    assert [(f.label, f.where) for f in failure.failed] == [("Widget w", "")]


def test_the_lines_are_bounded() -> None:
    out = parse_apply_output("", "x" * 5000 + "\n" + "y\n" * (MAX_LINES + 5))
    assert len(out.lines) == MAX_LINES + 1 and out.lines[-1] == "... 6 more lines"
    assert out.lines[0].endswith("... (3000 more characters)")
    assert parse_apply_output("", "").lines == ("no output",)


def test_every_line_reaches_the_table_json_and_log_file_redacted(tmp_path: Path) -> None:
    token = "abcdef.0123456789abcdef"
    stderr = (f"Error from server (Invalid): error when applying patch:\n"
              f'{{"stringData":{{"token":"{token}"}}}}\nto:\n'
              'Resource: "/v1, Resource=secrets", GroupVersionKind: "/v1, Kind=Secret"\n'
              'Name: "join", Namespace: "kube-system"\n'
              'for: "STDIN": error when patching "STDIN": Secret "join" is invalid: type: '
              "Invalid value\n")
    failure = addonrecord.explain_failure("s.yaml", 1, b"", stderr.encode(), None)
    node = NodeReport("cp-1", "control-plane", "10.0.0.1", Outcome.FAILED, "addons",
                      failure.message(), log_tail=list(failure.report_lines()))
    report = RunReport("bootstrap", "lab", "inv.yml", nodes=[node])
    plain, out = io.StringIO(), io.StringIO()
    JsonReporter(PlainReporter(Redactor(), plain), Redactor(), out).finish(report)
    logger = LogFileReporter(tmp_path / "run.log", Redactor())
    logger.finish(report)
    logger.close()
    table, log = plain.getvalue(), (tmp_path / "run.log").read_text()
    tail = json.loads(out.getvalue())["nodes"][0]["logTail"]
    assert "failed: Secret kube-system/join" in tail
    for shown in (table, log, "\n".join(tail)):
        assert token not in shown and REPLACEMENT in shown
        assert "Secret kube-system/join" in shown and "Invalid value" in shown
        assert 'Name: "join", Namespace: "kube-system"' in shown


def test_the_message_names_three_failures_and_the_tail_all(tmp_path: Path) -> None:
    text = "".join(f"---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: w{i}}}\n"
                   for i in range(5))
    stderr = "".join(f'{MAPPING_W.replace(chr(34) + "w" + chr(34), f"{chr(34)}w{i}{chr(34)}")}'
                     f"\n{HINT}\n" for i in range(5))
    failure = explain(tmp_path, "", stderr, text)
    assert [f.label for f in failure.failed] == [f"Widget w{i}" for i in range(5)]
    assert "Widget w2 (" in failure.message() and "Widget w3" not in failure.message()
    assert "; and 2 more (every line" in failure.message()
    assert "failed: Widget w4 at kube-router.yaml:18, document 5" in failure.report_lines()


def test_a_secrets_values_are_known_so_a_printed_patch_hides_them() -> None:
    text = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: not-a-secret}\n---\n"
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: kube-system}\n"
            "data: {password: c2VjcmV0LXZhbHVl}\nstringData:\n  key: |\n    line-one-secret\n"
            "    line-two-secret\n")
    layout = manifest_layout(text)
    assert layout.secret_values == ("c2VjcmV0LXZhbHVl", "line-one-secret\nline-two-secret\n")
    redactor = Redactor()
    for value in layout.secret_values:
        redactor.add(value)
    patch = ('{"data":{"password":"c2VjcmV0LXZhbHVl"},"metadata":{"annotations":{"kubectl'
             '.kubernetes.io/last-applied-configuration":"{\\"stringData\\":{\\"key\\":'
             '\\"line-one-secret\\nline-two-secret\\n\\"}}"}}}')
    shown = redactor.redact(patch)
    assert "c2VjcmV0LXZhbHVl" not in shown and "line-one-secret" not in shown
    assert "line-two-secret" not in shown and "not-a-secret" not in str(layout.secret_values)


def test_an_error_about_no_object_blames_none_and_lists_what_was_not_applied(
    tmp_path: Path,
) -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: kube-system}\n"
    stderr = ("error: Get \"https://10.0.0.1:6443/openapi/v2?timeout=32s\": dial tcp "
              "10.0.0.1:6443: connect: connection refused\n")
    failure = explain(tmp_path, "", stderr, text)
    assert failure.failed == ()
    assert failure.unplaced == ('Get "https://10.0.0.1:6443/openapi/v2?timeout=32s": dial tcp '
                                "10.0.0.1:6443: connect: connection refused",)
    assert [(f.label, f.where) for f in failure.not_applied] == [
        ("ConfigMap kube-system/c", "kube-router.yaml:1, document 1")]
    assert "; not applied: ConfigMap kube-system/c (kube-router.yaml:1, document 1)" in \
        failure.message()
