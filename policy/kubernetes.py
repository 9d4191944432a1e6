"""Kubernetes' own rules for names, labels and quantities, as the API server applies them.

Source: k8s.io/apimachinery v0.34.12 `pkg/util/validation/validation.go` (DNS-1123 label and
subdomain, DNS-1035 label, label values, qualified names), k8s.io/kubernetes v1.34.12
`pkg/apis/*/validation` (which kind's name is which), `pkg/controller/history/controller_history.go`
(a StatefulSet's pods carry `controller-revision-hash: <name>-<hash of up to 10 characters>`, a label
value of at most 63 characters: names above 52 characters make pods the API server refuses,
kubernetes/kubernetes#64023) and `pkg/apis/batch/validation` (CronJob names of at most 52), and
apimachinery `pkg/api/resource` (quantities).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Mapping, Optional

# Bounded to 63 characters in the pattern itself, so a settings type can match it whole (config/types.py).
DNS1123_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")
QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
LABEL_MAX = 63
SUBDOMAIN_MAX = 253
# controller-revision-hash (a label of every StatefulSet pod) is `<name>-<up to 10 characters>`.
STATEFULSET_NAME_MAX = LABEL_MAX - 1 - 10
# The CronJob controller appends an 11-character suffix to its Jobs' names.
CRONJOB_NAME_MAX = LABEL_MAX - 11
# The kinds a chart or the stack makes that have no namespace (the API server's `namespaced: false`
# resources, `kubectl api-resources --namespaced=false`): a namespace written on one is ignored.
CLUSTER_SCOPED = frozenset({
    "APIService", "ClusterRole", "ClusterRoleBinding", "CSIDriver", "CustomResourceDefinition", "IngressClass",
    "MutatingWebhookConfiguration", "Namespace", "PersistentVolume", "PriorityClass", "RuntimeClass", "StorageClass",
    "ValidatingWebhookConfiguration", "VolumeAttributesClass"})


def dns1123_label_problem(name: str) -> Optional[str]:
    if len(name) > LABEL_MAX:
        return f"{len(name)} characters, more than the {LABEL_MAX} of a DNS-1123 label"
    if not DNS1123_LABEL.fullmatch(name):
        return "not a DNS-1123 label (lower-case letters, digits and '-', alphanumeric at both ends)"
    return None


def dns1123_subdomain_problem(name: str) -> Optional[str]:
    if len(name) > SUBDOMAIN_MAX:
        return f"{len(name)} characters, more than the {SUBDOMAIN_MAX} of a DNS-1123 subdomain"
    if not DNS1123_SUBDOMAIN.fullmatch(name):
        return "not a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', alphanumeric at both ends)"
    return None


def dns1035_label_problem(name: str) -> Optional[str]:
    if len(name) > LABEL_MAX:
        return f"{len(name)} characters, more than the {LABEL_MAX} of a DNS-1035 label"
    if not DNS1035_LABEL.fullmatch(name):
        return "not a DNS-1035 label (lower-case letters, digits and '-', starting with a letter)"
    return None


def _at_most(limit: int, why: str):
    def check(name: str) -> Optional[str]:
        return dns1123_label_problem(name) or (
            f"{len(name)} characters, more than {limit} ({why})" if len(name) > limit else None)
    return check


# Each kind's name rule (pkg/apis/*/validation, v1.34.12); every other kind is a DNS-1123 subdomain.
NAME_RULES = {
    "Namespace": dns1123_label_problem,
    "Service": dns1035_label_problem,
    "StatefulSet": _at_most(STATEFULSET_NAME_MAX, "its pods' controller-revision-hash label adds up to 11"),
    "CronJob": _at_most(CRONJOB_NAME_MAX, "the CronJob controller adds 11 to its Jobs' names"),
}


def name_problem(kind: str, name: str) -> Optional[str]:
    """What the API server (or the controller making its pods) refuses in a `kind` named `name`."""
    return NAME_RULES.get(kind, dns1123_subdomain_problem)(name)


def label_value_problem(value: str) -> Optional[str]:
    if len(value) > LABEL_MAX:
        return f"{len(value)} characters, more than the {LABEL_MAX} of a label value"
    if not LABEL_VALUE.fullmatch(value):
        return "not a label value (letters, digits, '-', '_' and '.', alphanumeric at both ends)"
    return None


def label_key_problem(key: str) -> Optional[str]:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or dns1123_subdomain_problem(prefix)):
        return f"prefix {prefix!r} is not a DNS-1123 subdomain"
    if len(name) > LABEL_MAX:
        return f"name part of {len(name)} characters, more than {LABEL_MAX}"
    if not QUALIFIED_NAME.fullmatch(name):
        return "not a qualified name (letters, digits, '-', '_' and '.', alphanumeric at both ends)"
    return None


def label_problems(labels: Mapping[str, object]) -> list[str]:
    problems = []
    for key, value in labels.items():
        if (problem := label_key_problem(str(key))) is not None:
            problems.append(f"label key {key!r}: {problem}")
        elif not isinstance(value, str):
            problems.append(f"label {key}: {value!r} is not a string")
        elif (problem := label_value_problem(value)) is not None:
            problems.append(f"label {key}={value!r}: {problem}")
    return problems


_QUANTITY = re.compile(r"([+-]?[0-9.]+)([eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?")
_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60, "m": Decimal("0.001"),
             "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18, None: 1}


def quantity(text: object) -> Optional[Decimal]:
    """A Kubernetes quantity (`5Gi`, `500M`, `1.5e3`) as a number; None when it is not one."""
    m = _QUANTITY.fullmatch(str(text).strip())
    if m is None:
        return None
    number, suffix = m.groups()
    try:
        value = Decimal(number)
    except ArithmeticError:
        return None
    if suffix and suffix[0] in "eE":
        return value * Decimal(10) ** int(suffix[1:])
    return value * _SUFFIXES[suffix]
