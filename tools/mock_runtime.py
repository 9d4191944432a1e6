"""Run the real Pulumi program offline under the SDK's mock runtime and record what it registers.

Used by `make render` and by the tests. No Pulumi CLI, no cloud, no cluster: the mock answers
every resource registration and every provider function call with readable placeholders for the
values only known after a deployment (ARNs, IDs, generated passwords, integration keys).
"""

from __future__ import annotations

import json
import logging
import runpy
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

import pulumi
from pulumi.runtime import mocks, rpc
from pulumi.runtime import resource as runtime_resource
from pulumi.runtime.proto import source_pb2
from config.schema import PROJECT
from monitoring.versions import PROMETHEUS_OPERATOR_MINOR

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"


@dataclass
class Registered:
    """One resource as the program registered it."""

    type: str
    name: str
    urn: str
    parent: str | None
    custom: bool
    inputs: dict
    protect: bool = False
    retain_on_delete: bool = False
    depends_on: tuple[str, ...] = ()
    """URNs of the resources this one was declared to wait for (`depends_on`)."""
    read: bool = False
    """Read from the cloud or the cluster (`.get`, a StackReference), not created by the program."""
    aliases: tuple[str, ...] = ()
    """`<type> <name>` of what this resource was before a rename (its `aliases`): the same resource."""

    def as_json(self) -> dict:
        entry = {"type": self.type, "name": self.name, "parent": self.parent, "inputs": plain(self.inputs)}
        if self.read:
            entry["read"] = True
        if self.protect or self.retain_on_delete:
            entry["options"] = {"protect": self.protect, "retainOnDelete": self.retain_on_delete}
        if self.aliases:
            entry["aliases"] = list(self.aliases)
        return entry


def alias_keys(request) -> tuple[str, ...]:
    """`<type> <name>` of each alias of a registration: a URN's last type and name, or a spec's, whose
    empty fields mean the resource's own."""
    keys = []
    for alias in request.aliases:
        if alias.WhichOneof("alias") == "urn":
            type_chain, name = alias.urn.split("::")[-2:]
            keys.append(f"{type_chain.rsplit('$', 1)[-1]} {name}")
        else:
            keys.append(f"{alias.spec.type or request.type} {alias.spec.name or request.name}")
    return tuple(sorted(set(keys) - {f"{request.type} {request.name}"}))


def plain(value: Any, reveal_secrets: bool = False) -> Any:
    """Inputs as JSON. Secrets become {"__secret__": value}, or with
    `reveal_secrets` their value in place, as rendered files show them (here they only ever
    hold placeholders)."""
    if rpc.is_rpc_secret(value):
        inner = plain(rpc.unwrap_rpc_secret(value), reveal_secrets)
        return inner if reveal_secrets else {"__secret__": inner}
    if isinstance(value, dict):
        return {k: plain(v, reveal_secrets) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [plain(v, reveal_secrets) for v in value]
    if isinstance(value, float) and value.is_integer():
        # The wire format carries every number as a double; 2 replicas are 2, not 2.0.
        return int(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def _after_deploy(what: str) -> str:
    return f"<{what} after deploy>"


def resource_outputs(typ: str, name: str, inputs: dict) -> dict:
    """What the cloud would add to a resource's inputs, as readable placeholders."""
    out = dict(inputs)
    # An auto-name (or a prefix) gets a unique suffix from the provider: a placeholder here.
    if typ == "aws:s3/bucket:Bucket":
        bucket = inputs.get("bucket") or f"{inputs.get('bucketPrefix') or name + '-'}0000000"
        out.update(bucket=bucket, arn=f"arn:aws:s3:::{bucket}", region=inputs.get("region", "us-east-1"))
    elif typ == "aws:iam/role:Role":
        role = inputs.get("name") or (f"{inputs['namePrefix']}0000000" if inputs.get("namePrefix") else name)
        out.update(arn=f"arn:aws:iam::{ACCOUNT}:role/{role}", name=role)
    elif typ.startswith("aws:"):
        out.setdefault("arn", f"arn:aws:{typ.split(':')[1].split('/')[0]}::{ACCOUNT}:{name}")
    elif typ == "tls:index/privateKey:PrivateKey":
        out.update(privateKeyPem=_after_deploy(f"private key {name}"), publicKeyPem=_after_deploy(f"public key {name}"))
    elif typ == "tls:index/certRequest:CertRequest":
        out.update(certRequestPem=_after_deploy(f"certificate request {name}"))
    elif typ in ("tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert"):
        out.update(certPem=_after_deploy(f"certificate {name}"))
    elif typ == "random:index/randomPassword:RandomPassword":
        out.update(result=f"<generated password: {name}>", bcryptHash=f"<bcrypt of {name}>")
    elif typ == "pagerduty:index/serviceIntegration:ServiceIntegration":
        out.update(integrationKey=_after_deploy(f"PagerDuty integration key of {name}"))
    elif typ.startswith("kubernetes:") and "metadata" in inputs:
        meta = dict(inputs.get("metadata") or {})
        meta.setdefault("name", name)
        out["metadata"] = meta
    elif typ == "kubernetes:helm.sh/v3:Release":
        out.setdefault("name", inputs.get("name", name))
        out["status"] = {"namespace": inputs.get("namespace", "default"), "name": out["name"]}
    return out


class RecordingMonitor(mocks.MockMonitor):
    """The SDK's mock monitor, also keeping each registration: its parent and options from the
    request, its inputs as the SDK read them for the mocks (read once: a second reading was a
    twentieth of a render at 200 services)."""

    def __init__(self, program_mocks: "ProgramMocks"):
        super().__init__(program_mocks)
        self.registered: list[Registered] = []

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self._record(
                request, response.urn, custom=bool(request.custom),
                protect=bool(request.protect), retain_on_delete=bool(request.retainOnDelete),
                depends_on=tuple(sorted(request.dependencies)), aliases=alias_keys(request),
            )
        return response

    def ReadResource(self, request):
        # StackReferences are reads, not registrations; they belong in the record all the same.
        response = super().ReadResource(request)
        self._record(request, response.urn, custom=True, read=True)
        return response

    def _record(self, request, urn: str, **options: Any) -> None:
        self.registered.append(
            Registered(
                type=request.type,
                name=request.name,
                urn=urn,
                parent=request.parent or None,
                inputs=self.mocks.handed.inputs,
                **options,
            )
        )


CRD = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"


def cluster_crd(name: str, operator_version: str) -> dict:
    """A monitoring.coreos.com CRD as a cluster whose Prometheus Operator is `operator_version` serves it."""
    plural, _, group = name.partition(".")
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": name, "annotations": {"operator.prometheus.io/version": operator_version}},
            "spec": {"group": group, "scope": "Namespaced", "names": {"plural": plural, "kind": plural},
                     "versions": [{"name": "v1", "served": True, "storage": True}]}}


class ProgramMocks(pulumi.runtime.Mocks):
    def __init__(self, stack_outputs: Mapping[str, Any], operator_version: Optional[str]):
        self.stack_outputs = dict(stack_outputs)
        self.operator_version = operator_version
        # The inputs of the registration under way on each of the SDK's monitor threads, for the record.
        self.handed = threading.local()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.handed.inputs = args.inputs
        if args.typ == "pulumi:pulumi:StackReference":
            return f"{args.name}-id", {"name": args.name, "outputs": {**SOURCE_STACK_OUTPUTS, **self.stack_outputs}}
        if args.typ == CRD and args.resource_id:
            # A read of the cluster's CRD (joining a platform's Operator); none without an Operator.
            if self.operator_version is None:
                raise Exception(f"resource '{args.resource_id}' does not exist")
            return args.resource_id, cluster_crd(args.resource_id, self.operator_version)
        state = resource_outputs(args.typ, args.name, args.inputs)
        # An S3 bucket's ID is its name (what its sub-resources' `bucket` inputs carry).
        return state["bucket"] if args.typ == "aws:s3/bucket:Bucket" else f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        token, inputs = args.token, args.args
        if token == "pagerduty:index/getUser:getUser":
            return {"id": f"P-USER-{inputs['email']}", "email": inputs["email"], "name": inputs["email"]}, []
        if token == "pagerduty:index/getSchedule:getSchedule":
            return {"id": f"P-SCHEDULE-{inputs['name']}", "name": inputs["name"]}, []
        if token == "pagerduty:index/getEscalationPolicy:getEscalationPolicy":
            return {"id": f"P-POLICY-{inputs['name']}", "name": inputs["name"]}, []
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/render", "userId": "render"}, []
        if token == "aws:index/getRegion:getRegion":
            return {"name": "us-east-1", "region": "us-east-1"}, []
        return {}, []


# What a StackReference to the cluster's infrastructure stack returns in a render.
INFRA_OUTPUTS = {
    "kubeconfig": "<kubeconfig of the infrastructure stack>",
    "oidcProviderArn": f"arn:aws:iam::{ACCOUNT}:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/RENDER",
    "oidcIssuerUrl": "https://oidc.eks.us-east-1.amazonaws.com/id/RENDER",
}
# ... and one to another cluster's stack of this program, that this one federates from.
SOURCE_STACK_OUTPUTS = {"federationPassword": "<federation password of the source stack>"}


@dataclass
class Run:
    """The outcome of one program run."""

    resources: list[Registered]
    exports: dict
    error: Exception | None = None
    warnings: list[str] = field(default_factory=list)
    """What the program told the engine as warnings (`pulumi preview` prints them)."""

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.type == typ]


class _EngineLog(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.warnings: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno == logging.WARNING:
            self.warnings.append(record.getMessage())


def run_program(
    stack: str,
    config: Mapping[str, Any],
    secret_keys: list[str],
    stack_outputs: Mapping[str, Any] = INFRA_OUTPUTS,
    operator_version: Optional[str] = ".".join(map(str, PROMETHEUS_OPERATOR_MINOR)) + ".0",
) -> Run:
    """Run __main__.py for `stack` with `config` (full key -> raw text, as Pulumi passes it), in a
    cluster whose Prometheus Operator is `operator_version` (None: a cluster without one)."""
    program_mocks = ProgramMocks(stack_outputs, operator_version)
    monitor = RecordingMonitor(program_mocks)
    # A fresh root Stack per run: set_mocks keeps an earlier run's root, and with it that stack's URN.
    pulumi.runtime.settings.ROOT.set(None)
    # The engine's log, kept with the run rather than printed.
    engine_log = _EngineLog()
    logger = logging.getLogger(f"{PROJECT}.mock-engine")
    logger.propagate, logger.handlers = False, [engine_log]
    mocks.set_mocks(program_mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor, logger=logger)
    pulumi.runtime.set_all_config(dict(config), secret_keys)
    exports: dict = {}
    error: Exception | None = None

    def program():
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        # Waiting on the stack's exports also waits on everything they are built from.
        root = pulumi.runtime.get_root_resource()
        return pulumi.Output.from_input(dict(root.outputs)).apply(exports.update)

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    # The SDK walks the Python stack (and reads each frame's source line) at every registration, for
    # the engine to show where a resource was declared: no engine reads it here, and at 200 services
    # it is a tenth of the render.
    stack_trace, runtime_resource._get_stack_trace = runtime_resource._get_stack_trace, source_pb2.StackTrace
    try:
        pulumi.runtime.test(program)()
    except Exception as err:  # the program's own error (bad config) is a result, not a crash
        error = err
    finally:
        runtime_resource._get_stack_trace = stack_trace
    # Registration order depends on when outputs resolve; the URN order does not.
    return Run(resources=sorted(monitor.registered, key=lambda r: r.urn), exports=exports, error=error,
               warnings=engine_log.warnings)


def encode_config(namespace: str, values: Mapping[str, Any]) -> dict[str, str]:
    """Stack-file config (`ns:key: value`) as Pulumi hands it to a program: objects as JSON text."""
    encoded = {}
    for key, value in values.items():
        full = key if ":" in key else f"{namespace}:{key}"
        encoded[full] = value if isinstance(value, str) else json.dumps(value)
    return encoded
