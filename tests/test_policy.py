"""The policy pack's rules (policy/rules/): each accepts dev and prod as shipped and refuses a mutated
copy of prod with a message naming the resource, the value and the limit.

The mutations edit the resources of prod's cached mock run (tests/support.py), as a changed program
would register them; the rules then see what a preview sees (no chart output). The charts' output is
judged under the `charts` marker, the pack in its own virtualenv under the `pack` marker.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from config import ConfigError
from policy import immutable
from policy.aws import duration_seconds
from policy.ebs import GP3, gp3_volume
from policy.model import RELEASE, StackView, prometheus_objects
from policy.rules import RULES, violations
from tests.support import ROOT, rendered_stack, stack_settings
from tests.test_operations_docs import anchors
from tools import policy as runner
from tools.rendered import reveal

STACKS = ["dev", "prod"]
PROFILE_CLASS = "gp3-fast-6000iops-250mibps"


def resources(stack: str = "prod") -> list[dict[str, Any]]:
    """A copy of the stack's registered resources, secrets revealed, to mutate."""
    return [{**r, "inputs": reveal(copy.deepcopy(r["inputs"]))} for r in rendered_stack(stack).resources]


def named(registered: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (found,) = [r for r in registered if r["name"] == name]
    return found["inputs"]


def kps_values(registered: list[dict[str, Any]]) -> dict[str, Any]:
    return named(registered, "metrics-kube-prometheus-stack")["values"]


def judged(registered: list[dict[str, Any]], rule: str) -> list[str]:
    """The violations of one rule, as `make policy` prints them (`<subject>: <message>`)."""
    (chosen,) = [r for r in RULES if r.name == rule]
    return [f"{v.subject}: {v.message}" for v in chosen.run(StackView.of(runner.resources_of(registered)))]


def mutated(change: Callable[[list[dict[str, Any]]], None]) -> list[dict[str, Any]]:
    registered = resources()
    change(registered)
    return registered


# ------------------------------------------------------------------------------ the shipped stacks


@pytest.mark.parametrize("stack", STACKS)
def test_the_shipped_stacks_break_no_rule(stack):
    view = StackView.of(runner.resources_of(rendered_stack(stack).resources))
    assert len(view.resources) > 90 and view.kind("Prometheus", "Alertmanager"), "the view holds the stack"
    assert [str(v) for v in violations(view)] == []


def test_the_stacks_together_share_no_pagerduty_name():
    union = StackView.of(runner.resources_of([r for stack in STACKS for r in rendered_stack(stack).resources]))
    assert [str(v) for v in runner.judge(union, account_wide=True)] == []


def test_every_rule_has_a_name_a_description_and_its_sources():
    assert len({r.name for r in RULES}) == len(RULES) >= 10
    assert all(r.description and r.sources for r in RULES)


# ------------------------------------------------------------------------------ EBS gp3


def test_a_small_volume_asking_for_more_than_500_iops_per_gib_is_refused():
    """The prod defect: 6,000 IOPS on Alertmanager's 5 GiB claims, which the driver does not cap."""
    def profile_on_alertmanager(registered):
        claim = kps_values(registered)["alertmanager"]["alertmanagerSpec"]["storage"]["volumeClaimTemplate"]["spec"]
        claim["volumeAttributesClassName"] = PROFILE_CLASS

    assert judged(mutated(profile_on_alertmanager), "ebs-gp3-volumes") == [
        "Alertmanager monitoring/kube-prometheus-stack-alertmanager, storage.volumeClaimTemplate: 5Gi (5 GiB) of "
        f"StorageClass gp3 with VolumeAttributesClass {PROFILE_CLASS}: EC2 refuses 6,000 IOPS on 5 GiB (Iops to volume "
        "size ratio of 1200.000000 is too high; maximum is 500): the driver caps only volumes of 6 GiB and more; "
        "leave IOPS unset below that (the 3,000 baseline)"]


def test_a_volume_too_small_for_its_iops_is_capped_by_the_driver():
    def smaller_prometheus(registered):
        claim = kps_values(registered)["prometheus"]["prometheusSpec"]["storageSpec"]["volumeClaimTemplate"]["spec"]
        claim["resources"]["requests"]["storage"] = "10Gi"

    (found,) = judged(mutated(smaller_prometheus), "ebs-gp3-volumes")
    assert found.startswith("Prometheus monitoring/kube-prometheus-stack-prometheus, storage.volumeClaimTemplate: 10Gi")
    assert found.endswith("6,000 IOPS are capped to 5,000 by the driver: at most 500 IOPS per GiB of a 10 GiB volume")


@pytest.mark.parametrize("parameters, expected", [
    ({"iops": "6000", "throughput": "2000"},
     "EC2 refuses 2,000 MiB/s with 6,000 IOPS (Throughput (MiBps) to iops ratio of 0.333333 is too high; maximum is "
     "0.250000 MiBps per iops)"),
    ({"iops": "90000"}, "90,000 IOPS are capped to 80,000 by the driver (gp3's maximum)"),
    ({"throughput": "2500"}, "EC2 refuses 2,500 MiB/s: gp3 takes 125 to 2,000 MiB/s"),
])
def test_an_attributes_class_beyond_gp3s_limits_is_refused_with_the_limit(parameters, expected):
    registered = mutated(lambda r: named(r, "gp3-profile-fast").update(parameters=parameters))
    assert any(line.endswith(expected) and line.startswith("Prometheus monitoring/kube-prometheus-stack-prometheus")
               for line in judged(registered, "ebs-gp3-volumes")), judged(registered, "ebs-gp3-volumes")
    assert any(expected in line for line in judged(registered, "ebs-csi-parameters"))


def test_a_volume_beyond_64_tib_is_refused():
    def huge(registered):
        claim = kps_values(registered)["prometheus"]["prometheusSpec"]["storageSpec"]["volumeClaimTemplate"]["spec"]
        claim["resources"]["requests"]["storage"] = "65Ti"

    assert any(line.endswith("EC2 refuses a gp3 volume of 66560 GiB: sizes are 1 to 65,536 GiB")
               for line in judged(mutated(huge), "ebs-gp3-volumes"))


def test_a_claim_naming_a_class_the_stack_does_not_create_is_refused():
    registered = mutated(lambda r: r.remove(next(x for x in r if x["name"] == "gp3-profile-fast")))
    assert judged(registered, "ebs-gp3-volumes") == [
        "Prometheus monitoring/kube-prometheus-stack-prometheus, storage.volumeClaimTemplate: VolumeAttributesClass "
        f"{PROFILE_CLASS} is not one the stack creates (none): the claim stays Pending"]


def test_parameters_the_driver_does_not_take_are_refused():
    def bad_keys(registered):
        named(registered, "gp3-storage-class")["parameters"].update(iops="3000", iopsPerGB="50", fsType="xfs")
        named(registered, "gp3-profile-fast")["parameters"] = {"IOPS": "6000"}

    assert sorted(judged(mutated(bad_keys), "ebs-csi-parameters")) == [
        "StorageClass gp3: parameter 'fstype' is not one of the EBS CSI driver's (Invalid parameter key fstype for "
        "CreateVolume)",
        "StorageClass gp3: sets both iops and iopsPerGB (invalid StorageClass parameters; specify either IOPS or "
        "IOPSPerGb, not both)",
        f"VolumeAttributesClass {PROFILE_CLASS}: parameter 'IOPS' is not one the EBS CSI driver modifies (Invalid "
        "mutable parameter key: IOPS; keys are case-sensitive)",
    ]


def test_the_settings_refuse_a_profile_a_volume_cannot_have_with_the_packs_words():
    """One rule (policy/ebs.py) for the settings and the pack: the problem is worded alike."""
    with pytest.raises(ConfigError) as refused:
        stack_settings("prod", {"alerting": {"alertmanager": {"volumeProfile": "fast"}}})
    (problem,) = gp3_volume(5, 6000, 250).problems
    assert refused.value.problems == [
        f"webhook-monitoring:alerting.alertmanager.volumeProfile: got 'fast', expected a profile a 5Gi gp3 volume can "
        f"have: {problem}"]
    with pytest.raises(ConfigError) as refused:
        stack_settings("prod", {"storage": {"profiles": [{"name": "fast", "iops": 3000, "throughput": 1000}]}})
    ratio = ("EC2 refuses 1,000 MiB/s with 3,000 IOPS (Throughput (MiBps) to iops ratio of 0.333333 is too high; "
             "maximum is 0.250000 MiBps per iops)")
    assert refused.value.problems == [
        f"webhook-monitoring:storage.profiles[0]: got {{'iops': 3000, 'throughput': 1000}}, expected a performance a "
        f"gp3 volume can have: {ratio}",
        f"webhook-monitoring:prometheus.volumeProfile: got 'fast', expected a profile a 200Gi gp3 volume can have: {ratio}"]
    assert stack_settings("prod", {"storage": {"profiles": [{"name": "fast", "iops": GP3.max_iops}]}})


# ------------------------------------------------------------------------------ references


def test_a_secret_prometheus_mounts_that_nothing_creates_is_refused():
    """The prod defect: the federation credentials named, never created."""
    registered = mutated(lambda r: r.remove(next(x for x in r if x["name"] == "metrics-federation-webhook-prod-euw1")))
    assert judged(registered, "pod-references-exist") == [
        "Prometheus monitoring/kube-prometheus-stack-prometheus: spec.secrets (mounted in every pod) needs Secret "
        "monitoring/federation-euw1, which nothing in the stack creates: its pods cannot start until it exists"]


def test_a_secret_in_another_namespace_does_not_count():
    def elsewhere(registered):
        named(registered, "metrics-federation-webhook-prod-euw1")["metadata"]["namespace"] = "default"

    assert judged(mutated(elsewhere), "pod-references-exist") == [
        "Prometheus monitoring/kube-prometheus-stack-prometheus: spec.secrets (mounted in every pod) needs Secret "
        "monitoring/federation-euw1, which nothing in the stack creates: its pods cannot start until it exists"]


def test_a_deployment_mounting_a_missing_secret_is_refused():
    def missing(registered):
        spec = named(registered, "metrics-ha-tracker-deployment")["spec"]["template"]["spec"]
        spec["volumes"].append({"name": "extra", "secret": {"secretName": "not-there"}})
        spec["volumes"].append({"name": "optional", "secret": {"secretName": "maybe", "optional": True}})

    assert judged(mutated(missing), "pod-references-exist") == [
        "Deployment monitoring/mimir-ha-tracker-etcd: volume extra needs Secret monitoring/not-there, which nothing in "
        "the stack creates: its pods cannot start until it exists"]


# ------------------------------------------------------------------------------ names


def test_names_and_labels_the_api_server_refuses_are_refused():
    def bad_names(registered):
        deployment = named(registered, "metrics-ha-tracker-deployment")
        deployment["metadata"]["name"] = "Mimir_HA"
        deployment["metadata"]["labels"]["team"] = "x" * 64
        named(registered, "metrics-blackbox-exporter")["name"] = "b" * 54

    assert judged(mutated(bad_names), "kubernetes-names") == [
        "Deployment monitoring/Mimir_HA: name 'Mimir_HA': not a DNS-1123 subdomain (lower-case letters, digits, '-' and "
        "'.', alphanumeric at both ends)",
        f"Deployment monitoring/Mimir_HA: label team={'x' * 64!r}: 64 characters, more than the 63 of a label value",
        f"Helm release {'b' * 54}: name {'b' * 54!r}: Helm takes DNS-1123 subdomains of at most 53 characters (54)",
    ]


def test_a_statefulset_name_leaves_room_for_its_pods_revision_label():
    def long_names(registered):
        kps_values(registered)["fullnameOverride"] = "x" * 31

    # prometheus-<31>-prometheus: 53 characters; alertmanager-<31>-alertmanager: 57.
    assert judged(mutated(long_names), "kubernetes-names") == [
        f"Prometheus monitoring/{'x' * 31}-prometheus: the Operator's StatefulSet 'prometheus-{'x' * 31}-prometheus': "
        "53 characters, more than 52 (its pods' controller-revision-hash label adds up to 11)",
        f"Alertmanager monitoring/{'x' * 31}-alertmanager: the Operator's StatefulSet "
        f"'alertmanager-{'x' * 31}-alertmanager': 57 characters, more than 52 (its pods' controller-revision-hash "
        "label adds up to 11)"]
    fits = mutated(lambda r: kps_values(r).update(fullnameOverride="x" * 26))  # alertmanager-<26>-alertmanager: 52
    assert judged(fits, "kubernetes-names") == []


# ------------------------------------------------------------------------------ AWS


def test_a_bucket_name_s3_refuses_is_refused():
    registered = mutated(lambda r: named(r, "metrics-bucket").update(bucket="Webhook..Metrics"))
    assert judged(registered, "s3-bucket-names") == [
        "S3 bucket metrics-bucket: name 'Webhook..Metrics': S3 bucket names are lower-case letters, digits, '.' and '-', "
        "beginning and ending with a letter or digit"]
    long_name = mutated(lambda r: next(x for x in r if x["name"] == "logs-bucket").update(name="l" * 60))
    assert judged(long_name, "s3-bucket-names") == [
        f"S3 bucket {'l' * 60}: name '{'l' * 60}-xxxxxxx' (Pulumi's name for it: the resource name and 8 characters): "
        "68 characters: S3 bucket names are 3 to 63 characters long"]


def test_a_bucket_prefix_is_judged_with_the_suffix_pulumi_aws_adds():
    """A derived name is a prefix ending in '-' (the suffix follows): taken; one longer than the 37
    characters the 26-character suffix leaves is refused."""
    def prefixed(prefix: str):
        return mutated(lambda r: named(r, "metrics-bucket").update(bucketPrefix=prefix))

    assert judged(prefixed("webhook-prod-euw1-prod-metrics-"), "s3-bucket-names") == []
    assert judged(prefixed("w" * 38), "s3-bucket-names") == [
        f"S3 bucket metrics-bucket: name {'w' * 38!r} and pulumi-aws's 26-character suffix: "
        "64 characters: S3 bucket names are 3 to 63 characters long"]


def test_a_stores_retention_is_read_in_prometheus_duration_grammar():
    """Mimir's and Loki's retention settings are `model.Duration`s: units in order, each once."""
    assert [duration_seconds(t) for t in ("2160h", "90d", "1h30m", "0", "30m1h", "1h1h", "90 days", "")] == [
        7_776_000, 7_776_000, 5_400, 0, None, None, None, None]


def test_an_expiry_not_longer_than_the_stores_retention_is_refused():
    def expire_early(registered):
        named(registered, "metrics-lifecycle")["rules"][0]["expiration"]["days"] = 90

    assert judged(mutated(expire_early), "s3-lifecycle-outlives-retention") == [
        "S3 bucket metrics-bucket-0000000: objects expire after 90 days, but mimir-distributed keeps data 2160h "
        "(mimir.structuredConfig.limits.compactor_blocks_retention_period): S3 would delete data the store still "
        "serves; the expiry must be longer than the retention"]


def test_an_irsa_trust_wider_than_one_service_account_is_refused():
    def widen(registered):
        role = named(registered, "logs-role")
        policy = json.loads(role["assumeRolePolicy"])
        equals = policy["Statement"][0]["Condition"].pop("StringEquals")
        issuer = next(k for k in equals if k.endswith(":sub")).removesuffix(":sub")
        policy["Statement"][0]["Condition"] = {"StringLike": {f"{issuer}:sub": "system:serviceaccount:monitoring:*"},
                                               "StringEquals": {f"{issuer}:aud": "sts.example.com"}}
        role["assumeRolePolicy"] = json.dumps(policy)

    issuer = "oidc.eks.us-east-1.amazonaws.com/id/RENDER"
    assert judged(mutated(widen), "irsa-trust-policies") == [
        "IAM role logs-role: Statement[0]: conditions ['StringLike'] widen who may assume the role: IRSA trusts exact "
        "service accounts with StringEquals",
        f"IAM role logs-role: Statement[0]: no {issuer}:sub condition: any service account of the cluster may assume the "
        "role",
        f"IAM role logs-role: Statement[0]: {issuer}:aud is 'sts.example.com', expected 'sts.amazonaws.com'",
    ]


def test_a_trusted_service_account_the_charts_do_not_make_is_refused():
    """With the charts' output: the role's service account exists, annotated with a role."""
    (rule,) = [r for r in RULES if r.name == "irsa-trust-policies"]
    registered = runner.resources_of(resources())
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
        "name": "mimir", "namespace": "monitoring", "annotations": {"eks.amazonaws.com/role-arn": "arn"}}}
    unannotated = {**account, "metadata": {"name": "loki", "namespace": "monitoring"}}
    found = [f"{v.subject}: {v.message}" for v in rule.run(StackView.of(registered, [account, unannotated]))]
    assert found == [
        "IAM role logs-role: service account monitoring/loki has no eks.amazonaws.com/role-arn annotation: EKS' "
        "webhook gives its pods no web identity"]
    assert [v.message for v in rule.run(StackView.of(registered, [account]))] == [
        "trusts service account monitoring/loki, which the stack does not create: no pod gets the role"]


# ------------------------------------------------------------------------------ Slack and PagerDuty


def alertmanager_config(registered: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    secret = named(registered, "alerting-alertmanager-config")
    return secret, yaml.safe_load(secret["stringData"]["alertmanager.yaml"])


def test_one_webhook_for_two_channels_is_refused():
    """The prod defect: the platform channel through the team's webhook, which posts to the team's channel."""
    def shared(registered):
        secret, config = alertmanager_config(registered)
        team_url = next(r for r in config["receivers"] if r["name"] == "slack")["slack_configs"][0]["api_url"]
        next(r for r in config["receivers"] if r["name"] == "platform")["slack_configs"][0]["api_url"] = team_url
        secret["stringData"]["alertmanager.yaml"] = yaml.safe_dump(config)

    assert judged(mutated(shared), "slack-webhook-per-channel") == [
        "Secret monitoring/alerting-alertmanager-config: one incoming-webhook URL serves #platform-alerts (receiver "
        "platform) and #webhook-alerts (receivers pagerduty, slack): a Slack app's webhook posts to the one channel it "
        "was made for and ignores `channel`, so all of them land there; each channel needs its own webhook URL"]


def test_a_summary_pagerduty_would_cut_is_refused():
    def long_summary(registered):
        rule = next(r for r in registered if r["type"] == "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
                    and any("alert" in x for g in r["inputs"]["spec"]["groups"] for x in g["rules"]))
        alert = next(x for g in rule["inputs"]["spec"]["groups"] for x in g["rules"] if "alert" in x)
        alert["annotations"]["summary"] = "s" * 900 + " on {{ $labels.namespace }}"

    (found,) = judged(mutated(long_summary), "pagerduty-summary-length")
    assert "its PagerDuty summary through receiver pagerduty can reach 1" in found
    assert found.endswith("characters; PagerDuty's limit is 1024 (Alertmanager cuts the rest)")


def test_two_pagerduty_services_of_one_name_are_refused_across_stacks():
    """Staging and prod in one PagerDuty account, both "Webhook Delivery"."""
    prod = resources()
    staging = [{**r, "name": f"staging-{r['name']}"} for r in copy.deepcopy(prod) if r["type"].startswith("pagerduty:")]
    union = StackView.of(runner.resources_of(prod + staging))
    assert [f"{v.subject}: {v.message}" for v in runner.judge(union, account_wide=True)] == [
        "PagerDuty service staging-alerting-pagerduty-service: name 'Webhook Delivery' is also "
        "alerting-pagerduty-service's: PagerDuty refuses a second service of a name (Name has already been taken)",
        "PagerDuty escalation policy staging-alerting-escalation-policy: name 'Webhook Delivery' is also "
        "alerting-escalation-policy's: PagerDuty refuses a second escalation policy of a name (Name has already been "
        "taken)",
    ]


# ------------------------------------------------------------------------------ change safety


def view_of(registered: list[dict[str, Any]]) -> StackView:
    return StackView.of(runner.resources_of(registered))


def test_the_immutable_fields_are_plain_data_naming_what_the_server_says():
    kinds = {(f.kind, f.path) for f in immutable.IMMUTABLE_FIELDS}
    assert {("StorageClass", "parameters"), ("StorageClass", "provisioner"), ("StorageClass", "reclaimPolicy"),
            ("StorageClass", "volumeBindingMode"), ("StatefulSet", "spec.volumeClaimTemplates"),
            ("StatefulSet", "spec.selector"), ("StatefulSet", "spec.serviceName"),
            ("PersistentVolumeClaim", "spec.storageClassName"), ("VolumeAttributesClass", "parameters")} <= kinds
    for field in immutable.IMMUTABLE_FIELDS:
        assert field.effect in (immutable.REFUSED, immutable.NO_EFFECT) and field.says
    # Every runbook named, of a field or a migration, is a section of the handbook.
    for runbook in {f.runbook for f in immutable.IMMUTABLE_FIELDS} | {m.runbook for m in immutable.MIGRATIONS}:
        document, anchor = runbook.split("#")
        assert anchor in anchors(ROOT / document), runbook


def test_a_changed_storage_class_is_refused_unless_its_migration_carries_it():
    """Prod's class changed (the gp3 migration): carried for prod by its migration, not for dev."""
    base, head = resources(), resources()
    named(base, "gp3-storage-class")["parameters"].update(iops="6000", throughput="250")
    found = immutable.changes(view_of(base).objects, view_of(head).objects)
    assert [str(c) for c in found] == [
        'StorageClass gp3: parameters changes from {"csi.storage.k8s.io/fstype": "ext4", "encrypted": "true", "iops": '
        '"6000", "throughput": "250", "type": "gp3"} to {"csi.storage.k8s.io/fstype": "ext4", "encrypted": "true", '
        '"type": "gp3"}: refused by the API server (parameters: Forbidden: updates to parameters are forbidden.); the '
        'supported path: docs/operations/volumes.md#change-the-storage-class']
    assert list(immutable.uncarried("prod", found)) == []
    assert list(immutable.uncarried("dev", found)) == found
    # A protected class Pulumi would have to replace: `pulumi up` refuses, unless the migration releases it.
    assert runner.protected_replacements(view_of(base), view_of(head), "prod") == []
    (protected,) = runner.protected_replacements(view_of(base), view_of(head), "dev")
    assert protected.subject == "StorageClass gp3 (kubernetes:storage.k8s.io/v1:StorageClass gp3-storage-class)"
    assert "`pulumi up` refuses to replace a protected resource" in protected.message


def test_a_resize_of_the_operators_volumes_is_flagged_as_doing_nothing_to_existing_claims():
    head = resources()
    claim = kps_values(head)["prometheus"]["prometheusSpec"]["storageSpec"]["volumeClaimTemplate"]["spec"]
    claim["resources"]["requests"]["storage"] = "300Gi"
    (change,) = immutable.changes(view_of(resources()).objects, view_of(head).objects)
    assert (change.kind, change.name, change.path, change.effect) == (
        "Prometheus", "kube-prometheus-stack-prometheus", "spec.storage", immutable.NO_EFFECT)
    assert change.runbook == immutable.RESIZE
    assert list(immutable.uncarried("dev", [change])) == [change]


def claim_template(size: str, storage_class: str = "gp3") -> dict[str, Any]:
    return {"metadata": {"name": "data"}, "spec": {"storageClassName": storage_class, "accessModes": ["ReadWriteOnce"],
                                                   "resources": {"requests": {"storage": size}}}}


def statefulset(size: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "loki-write", "namespace": "monitoring"},
            "spec": {"serviceName": "loki-write-headless", "selector": {"matchLabels": {"app": "loki"}},
                     "replicas": 3, "volumeClaimTemplates": [claim_template(size)]}}


def test_a_statefulsets_claim_template_change_is_refused_and_a_replica_change_is_not():
    (change,) = immutable.changes([statefulset("10Gi")], [statefulset("20Gi")])
    assert (change.subject, change.path, change.effect) == (
        "StatefulSet monitoring/loki-write", "spec.volumeClaimTemplates", immutable.REFUSED)
    assert "updates to statefulset spec for fields other than" in change.says
    scaled = statefulset("10Gi")
    scaled["spec"]["replicas"] = 5
    assert immutable.changes([statefulset("10Gi")], [scaled]) == []


def test_a_claim_may_grow_but_not_shrink():
    def claim(size: str) -> dict[str, Any]:
        return {"kind": "PersistentVolumeClaim", "metadata": {"name": "grafana", "namespace": "monitoring"},
                **claim_template(size)}

    assert immutable.changes([claim("10Gi")], [claim("20Gi")]) == []
    (shrink,) = immutable.changes([claim("20Gi")], [claim("10Gi")])
    assert shrink.says == "spec.resources.requests.storage: Forbidden: field can not be less than previous value"


# ------------------------------------------------------------------------------ with the charts' output


@pytest.mark.charts
@pytest.mark.parametrize("stack", STACKS)
def test_the_shipped_stacks_break_no_rule_over_the_charts_output(stack):
    view, notes = runner.stack_view(stack)
    if not view.charts_templated:
        pytest.skip(f"no chart output: {notes}")
    assert view.kind("StatefulSet") and view.kind("PersistentVolumeClaim"), "the charts' claims are judged"
    assert [str(v) for v in violations(view)] == []
    print("\n".join(notes))


@pytest.mark.charts
@pytest.mark.parametrize("stack", STACKS)
def test_what_the_pack_reads_of_the_operator_from_the_values_is_what_the_chart_makes(stack):
    """Under a preview the pack knows the Operator's resources from kube-prometheus-stack's values
    (policy/model.py, prometheus_objects): the chart makes the same storage and mounts."""
    view, notes = runner.stack_view(stack)
    if not view.charts_templated:
        pytest.skip(f"no chart output: {notes}")
    (release,) = [r for r in view.resources if r.type == RELEASE and r.inputs["chart"] == "kube-prometheus-stack"]
    for predicted in prometheus_objects(release.inputs):
        (made,) = [o for o in view.kind(predicted["kind"]) if o["metadata"]["name"] == predicted["metadata"]["name"]]
        for field in ("storage", "secrets", "configMaps", "configSecret", "volumes"):
            # (The chart leaves an empty list out.)
            assert (made["spec"].get(field) or None) == (predicted["spec"].get(field) or None), (predicted["kind"], field)


@pytest.mark.charts
def test_each_size_and_performance_setting_changed_on_prod_is_caught_with_its_supported_path(tmp_path):
    """Prod's sizes and its profile changed in a copy of its stack file, rendered and templated: what the
    API server refuses, what the Operator ignores for existing claims, and what protection refuses."""
    head, notes = runner.stack_view("prod")
    if not head.charts_templated:
        pytest.skip(f"no chart output: {notes}")
    stack_file = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    config = stack_file["config"]
    config["webhook-monitoring:logging"] = {"volumeSize": "20Gi"}
    config["webhook-monitoring:prometheus"]["volumeSize"] = "300Gi"
    config["webhook-monitoring:grafana"]["volumeSize"] = "20Gi"
    config["webhook-monitoring:longTermStorage"] = {"ingesterVolumeSize": "100Gi"}
    config["webhook-monitoring:storage"]["profiles"][0]["iops"] = 8000
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(yaml.safe_dump(stack_file))
    settings, rendered = runner.render_stack("prod", path)
    objects, _ = runner.chart_objects(rendered, settings)
    changed = StackView.of(runner.resources_of(rendered.resources), objects)
    found = {(c.kind, c.name, c.path): c for c in immutable.changes(head.objects, changed.objects)}
    for statefulset in ("loki-write", "loki-backend", "mimir-distributed-ingester-zone-a"):
        change = found[("StatefulSet", statefulset, "spec.volumeClaimTemplates")]
        assert change.effect == immutable.REFUSED and change.runbook == immutable.STATEFULSET
    assert found[("Prometheus", "kube-prometheus-stack-prometheus", "spec.storage")].effect == immutable.NO_EFFECT
    # Grafana's claim is Helm's own: it grows in place, nothing to flag.
    assert not [key for key in found if key[0] == "PersistentVolumeClaim"]
    # The profile's new numbers are a new attributes class; the old one is protected.
    (replaced,) = runner.protected_replacements(head, changed, "prod")
    assert replaced.subject == ("VolumeAttributesClass gp3-fast-6000iops-250mibps "
                                "(kubernetes:storage.k8s.io/v1:VolumeAttributesClass gp3-profile-fast)")
    # No migration carries them: `make policy BASE=` fails until one names them with the runbook.
    loki = found[("StatefulSet", "loki-write", "spec.volumeClaimTemplates")]
    assert list(immutable.uncarried("prod", [loki])) == [loki]


@pytest.mark.charts
def test_make_policy_against_the_head_itself_finds_no_change():
    """`make policy BASE=HEAD` on prod: the base rendered with its own code in a git worktree, compared."""
    assert runner.main(["prod", "--base", "HEAD"]) == 0


# ------------------------------------------------------------------------------ the pack itself

POLICY_PYTHON = ROOT / ".venv-policy" / "bin" / "python"
PACK_RUN = """
import json, sys
from pulumi_policy import PolicyCustomTimeouts, PolicyResource, PolicyResourceOptions, StackValidationArgs
from policy.pack import policies
def options(r):
    return PolicyResourceOptions(bool((r.get("options") or {}).get("protect")), [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
resources = [PolicyResource(r["type"], r["inputs"], "urn:" + r["name"], r["name"], options(r), None, None, [], {})
             for r in json.load(sys.stdin)]
found = []
for policy in policies():
    policy.validate(StackValidationArgs(resources), lambda message, urn=None, name=policy.name: found.append([name, message]))
print(json.dumps([sorted(p.name for p in policies()), found]))
"""


def run_pack(registered: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    if not POLICY_PYTHON.exists():
        pytest.skip("the policy pack's virtualenv .venv-policy is missing: `make policy-venv` makes it")
    done = subprocess.run([str(POLICY_PYTHON), "-c", PACK_RUN], input=json.dumps(registered), capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    names, found = json.loads(done.stdout)
    return names, found


@pytest.mark.pack
def test_the_pack_runs_the_rules_under_pulumi_policy_and_finds_what_they_find():
    """The real pulumi-policy classes, on prod's resources as a preview hands them over: every rule is a
    mandatory stack policy, prod passes, and the Alertmanager defect is reported as offline."""
    names, found = run_pack(resources())
    assert names == sorted(r.name for r in RULES if not r.account_wide)
    assert found == []

    def profile_on_alertmanager(registered):
        claim = kps_values(registered)["alertmanager"]["alertmanagerSpec"]["storage"]["volumeClaimTemplate"]["spec"]
        claim["volumeAttributesClassName"] = PROFILE_CLASS

    broken = mutated(profile_on_alertmanager)
    _, found = run_pack(broken)
    assert found == [["ebs-gp3-volumes", line] for line in judged(broken, "ebs-gp3-volumes")]


@pytest.mark.pack
def test_the_pack_skips_what_a_preview_cannot_know_yet():
    """A first preview knows no role ARN or bucket name: those values are unknown, the pack judges the rest."""
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # pulumi_policy's UNKNOWN_STRING_VALUE

    def first_preview(registered):
        named(registered, "metrics-mimir")["values"] = unknown
        named(registered, "logs-role")["assumeRolePolicy"] = unknown
        named(registered, "metrics-bucket")["bucket"] = unknown
        named(registered, "metrics-ha-tracker-deployment")["metadata"]["labels"]["team"] = unknown
        named(registered, "alerting-alertmanager-config")["stringData"]["alertmanager.yaml"] = unknown

    _, found = run_pack(mutated(first_preview))
    assert found == []


@pytest.mark.pack
def test_the_pack_starts_as_pulumi_starts_it():
    """As Pulumi's Python language host runs a policy pack: `python -u -m pulumi.policy <engine> <pack>`
    in the pack's folder and virtualenv. It imports the rules, serves the analyzer and prints its port."""
    if not POLICY_PYTHON.exists():
        pytest.skip("the policy pack's virtualenv .venv-policy is missing: `make policy-venv` makes it")
    process = subprocess.Popen([str(POLICY_PYTHON), "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(ROOT / "policy")],
                               cwd=ROOT / "policy", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = process.stdout.readline().strip()
    finally:
        process.kill()
        _, errors = process.communicate()
    assert port.isdigit(), errors


def test_the_pack_is_a_python_policy_pack_with_its_own_pinned_virtualenv():
    pack = yaml.safe_load((ROOT / "policy" / "PulumiPolicy.yaml").read_text())
    assert pack["runtime"] == {"name": "python", "options": {"virtualenv": "../.venv-policy"}}
    pins = dict(line.split("==") for line in (ROOT / "policy" / "requirements.txt").read_text().splitlines()
                if "==" in line)
    program = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines() if "==" in line)
    assert pins["pulumi"] == program["pulumi"] and pins["pulumi-policy"] and pins["PyYAML"] == program["PyYAML"]
    assert Path(ROOT / "policy" / "__main__.py").read_text().count("PolicyPack(") == 1
