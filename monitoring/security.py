"""Pod Security Standards of the stack's namespaces.

The main namespace enforces `restricted`: every pod of the charts there is configured to comply
(testkit/chart_intent.py checks each one). The agents that need the host (node-exporter: host
network and PID namespace; the log agent: the node's log files) run in a namespace of their own at
`privileged`, the only level that admits them, and are hardened as far as they allow.
"""

from __future__ import annotations

from monitoring.versions import KUBERNETES_VERSION

RESTRICTED = "restricted"
PRIVILEGED = "privileged"
# The version of the standard the labels pin: a cluster upgrade does not tighten it unannounced.
STANDARD_VERSION = f"v{KUBERNETES_VERSION}"


def pod_security_labels(level: str) -> dict[str, str]:
    """Namespace labels that enforce `level`; below `restricted`, what pods do beyond it is also
    recorded in the API server's audit log (an audit annotation, not a warning at every apply)."""
    labels = {
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/enforce-version": STANDARD_VERSION,
    }
    if level != RESTRICTED:
        labels["pod-security.kubernetes.io/audit"] = RESTRICTED
        labels["pod-security.kubernetes.io/audit-version"] = STANDARD_VERSION
    return labels


# Long-running containers the charts give no liveness or readiness probe, and cannot be given one
# through their values: each with why that is acceptable. (testkit/chart_intent.py fails on any
# other container without probes; docs/security.md lists these.)
PROBE_EXCEPTIONS = {
    "grafana-sc-dashboard": "k8s-sidecar copies the chart's dashboard ConfigMaps into Grafana; the Grafana "
                            "chart offers probe values for it, but the image serves no health endpoint",
    "grafana-sc-datasources": "the same k8s-sidecar, for the data source ConfigMap",
    "config-reloader": "Alloy's config reloader; the Alloy chart sets no probe for it and offers no value "
                       "for one; Alloy itself is probed",
}
# Mimir's chart gives its components a readiness probe (`/ready`, which gates traffic and rollouts)
# and, on purpose, no liveness probe: Mimir serves no health endpoint but `/ready`, which is false
# while an ingester replays its WAL or a store-gateway loads its index, and a liveness probe on it
# would restart them in a loop (the very crash loop that loses the replay's progress). A stuck
# component shows in the stores' own alerts instead (docs/alerting.md).
PROBE_EXCEPTIONS.update({
    component: "Mimir: readiness on /ready only, no liveness probe (the chart's choice, kept: a restart "
               "during WAL replay or index loading starts it over)"
    for component in ("distributor", "ingester", "querier", "query-frontend", "query-scheduler", "store-gateway",
                      "compactor", "gateway", "rollout-operator")
})


# checkov's Kubernetes checks that still fail on the chart check's output (`make security-scan`),
# each with why it stays. Any other failing check fails the scan. docs/security.md lists them.
CHECKOV_ACCEPTED = {
    "CKV_K8S_11": "CPU limits: none, by design; throttling a scrape, a query or a rule evaluation hurts more "
                  "than it protects. Every container has CPU and memory requests and a memory limit (the chart "
                  "check asserts it).",
    "CKV_K8S_15": "Image pull policy Always: IfNotPresent with immutable version tags (digests where the program "
                  "defines the image); Always makes every start depend on the registry.",
    "CKV_K8S_43": "Images by digest: the charts' images are pinned by version through the chart versions (Grafana's "
                  "and its sidecars' by their tags, which its admin reset and folder Job share); the images the "
                  "program defines are pinned by digest, but the graphite exporter's, whose digest Renovate pins on "
                  "its first run (docs/security-updates.md).",
    "CKV_K8S_38": "Service account tokens: mounted only where the pod calls the Kubernetes API (the Operator, "
                  "kube-state-metrics, Grafana's sidecars, Alloy's pod discovery, the webhook certificate jobs); "
                  "every Loki pod and the exporters run without (Loki's memcached through its service account, "
                  "which checkov does not read).",
    "CKV_K8S_40": "High UIDs: Grafana (472), nginx (101) and Alloy (root) run as their images' own users; "
                  "another UID breaks the ownership of the files in their images.",
    "CKV_K8S_22": "Read-only root file system: Grafana (and its CLI, which resets the admin password before it "
                  "starts) and Alloy write to theirs (plugins, temporary files); every other container's is read-only.",
    "CKV_K8S_23": "Root containers: Alloy reads the node's log files, which root owns, as root (with no "
                  "capability, no privilege escalation, in the agents' namespace).",
    "CKV_K8S_29": "Pod security context: Alloy's is its container's (root, see CKV_K8S_23).",
    "CKV_K8S_17": "Host PID: node-exporter reads the node's processes (in the agents' namespace).",
    "CKV_K8S_19": "Host network: node-exporter reports the node's network (in the agents' namespace).",
    "CKV_K8S_8": "Liveness probes: the sidecars in PROBE_EXCEPTIONS serve no health endpoint.",
    "CKV_K8S_9": "Readiness probes: the sidecars in PROBE_EXCEPTIONS serve no health endpoint.",
    "CKV_K8S_35": "Secrets as environment variables: Grafana's break-glass admin password, which the Grafana "
                  "chart passes only so (to Grafana, and so to its CLI that resets it); every other secret is a "
                  "mounted file.",
    "CKV_K8S_49": "Wildcards in roles: the Prometheus Operator's ClusterRole (it manages every monitoring.coreos.com "
                  "resource).",
    "CKV_K8S_155": "Control over admission webhooks: the chart's job that installs the Operator's webhook "
                   "certificate patches its webhook configurations.",
    "CKV2_K8S_5": "Secrets read: the same job writes the webhook's certificate Secret.",
}
