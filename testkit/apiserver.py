"""etcd and kube-apiserver on loopback: the judge of every object the stack applies (tests only).

The API server of the Kubernetes release the stack targets (`make tools` builds it, and etcd, at
the versions of monitoring/versions.py) decides what `pulumi up` would: schemas, strict fields,
CRD validation, Pod Security admission, immutable fields, RBAC. There are no nodes and no
controller manager: nothing is scheduled, and nothing makes the objects controllers would make
(a namespace's `default` ServiceAccount, a Service's EndpointSlices); the tests make those they need.

Certificates (a CA, the serving certificate, client certificates) and the service-account signing
key are made per run. Clients authenticate with a client certificate: `admin` is in
`system:masters`.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from monitoring.versions import KUBERNETES_VERSION
from testkit.live import Process, free_port, wait_until
from tools.go_tools import binary

FIELD_MANAGER = "webhook-monitoring"
# The cluster's Service network (no Service gets an address a test uses).
SERVICE_CIDR = "10.96.0.0/16"
ISSUER = "https://kubernetes.default.svc"
MASTERS = "system:masters"


# ------------------------------------------------------------------------------ certificates


@dataclass(frozen=True)
class Credentials:
    """A client certificate and key (PEM files) and the CA the server's certificate is signed by."""

    cert: Path
    key: Path
    ca: Path


class Pki:
    """A throw-away CA, the API server's serving certificate, client certificates on demand, and
    the service-account signing key, as PEM files in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loopback-ca")])
        ca = (self._builder(name, name, self._key.public_key())
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                           content_commitment=False, key_encipherment=False, data_encipherment=False,
                                           key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
              .sign(self._key, hashes.SHA256()))
        self._ca_name = name
        self.ca = self._write("ca.crt", ca.public_bytes(serialization.Encoding.PEM))
        self.server = self._leaf("server", "kube-apiserver", (), server=True)
        service_account_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.service_account_key = self._write("sa.key", _private_pem(service_account_key))
        self.service_account_public_key = self._write("sa.pub", service_account_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    def client(self, user: str, groups: Iterable[str] = ()) -> Credentials:
        """A client certificate for `user` in `groups` (the API server reads CN and O)."""
        return self._leaf(user, user, tuple(groups))

    def _builder(self, subject: x509.Name, issuer: x509.Name, public_key: Any) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(self._now).not_valid_after(self._now + datetime.timedelta(days=1)))

    def _leaf(self, stem: str, common_name: str, groups: tuple[str, ...], server: bool = False) -> Credentials:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                             *(x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups)])
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (self._builder(subject, self._ca_name, key.public_key())
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   # Python's ssl (OpenSSL 3, X509_V_FLAG_X509_STRICT) refuses a chain without these.
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        return Credentials(self._write(f"{stem}.crt", cert.public_bytes(serialization.Encoding.PEM)),
                           self._write(f"{stem}.key", _private_pem(key)), self.ca)

    def _write(self, name: str, data: bytes) -> Path:
        path = self.directory / name
        path.write_bytes(data)
        path.chmod(0o600)
        return path


def _private_pem(key: Any) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


# ------------------------------------------------------------------------------ client


@dataclass(frozen=True)
class Response:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def message(self) -> str:
        """The server's own words (a Status' message), or the body."""
        if isinstance(self.body, dict):
            return self.body.get("message") or json.dumps(self.body)
        return str(self.body)


class Kube:
    """A small client of the API server: server-side apply, create, read, delete, the discovery of
    what a kind's resource is called and whether it is namespaced."""

    def __init__(self, url: str, credentials: Credentials) -> None:
        self.url = url
        self.credentials = credentials
        self._context = ssl.create_default_context(cafile=str(credentials.ca))
        self._context.load_cert_chain(str(credentials.cert), str(credentials.key))
        self._resources: dict[tuple[str, str], tuple[str, bool]] = {}
        """(apiVersion, kind) -> (collection path without the namespace part, namespaced)."""

    def request(self, method: str, path: str, body: Any = None, params: Optional[dict[str, str]] = None,
                content_type: str = "application/json") -> Response:
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, context=self._context, timeout=60) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return Response(status, parsed)

    # -------------------------------------------------------------------------- discovery

    def resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        """(`/apis/<group>/<version>/<plural>` or `/api/v1/<plural>`, namespaced) of a kind, from
        the server's discovery."""
        if (api_version, kind) not in self._resources:
            self._discover(api_version)
            if (api_version, kind) not in self._resources:
                raise LookupError(f"the API server serves no {kind} in {api_version}")
        return self._resources[(api_version, kind)]

    def _discover(self, api_version: str) -> None:
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        found = self.request("GET", base)
        for resource in found.body["resources"] if found.ok else []:
            if "/" not in resource["name"]:  # not a subresource
                self._resources[(api_version, resource["kind"])] = (f"{base}/{resource['name']}", resource["namespaced"])

    def served_kinds(self) -> dict[str, set[bool]]:
        """Every kind the server serves, in any group and version -> whether it is namespaced there."""
        groups = self.must(self.request("GET", "/apis"), "discovery")["groups"]
        for api_version in ["v1", *(v["groupVersion"] for g in groups for v in g["versions"])]:
            self._discover(api_version)
        kinds: dict[str, set[bool]] = {}
        for (_, kind), (_, namespaced) in self._resources.items():
            kinds.setdefault(kind, set()).add(namespaced)
        return kinds

    def namespaced(self, obj: dict[str, Any]) -> bool:
        return self.resource(obj["apiVersion"], obj["kind"])[1]

    def collection(self, api_version: str, kind: str, namespace: Optional[str] = None) -> str:
        path, namespaced = self.resource(api_version, kind)
        if not namespaced:
            return path
        assert namespace, f"{kind} is namespaced: a namespace is needed"
        base, plural = path.rsplit("/", 1)
        return f"{base}/namespaces/{namespace}/{plural}"

    def path(self, obj: dict[str, Any]) -> str:
        metadata = obj["metadata"]
        return f"{self.collection(obj['apiVersion'], obj['kind'], metadata.get('namespace'))}/{metadata['name']}"

    # -------------------------------------------------------------------------- verbs

    def apply(self, obj: dict[str, Any], dry_run: bool = False, manager: str = FIELD_MANAGER) -> Response:
        """Server-side apply with strict field validation (an unknown field is refused)."""
        return self.request("PATCH", self.path(obj), obj, _write_params(dry_run, manager), "application/apply-patch+yaml")

    def create(self, obj: dict[str, Any], dry_run: bool = False, manager: str = FIELD_MANAGER) -> Response:
        """A plain create (POST), as a client that does not adopt existing objects makes it."""
        collection = self.collection(obj["apiVersion"], obj["kind"], obj["metadata"].get("namespace"))
        return self.request("POST", collection, obj, _write_params(dry_run, manager))

    def get(self, obj: dict[str, Any]) -> Response:
        return self.request("GET", self.path(obj))

    def delete(self, obj: dict[str, Any]) -> Response:
        return self.request("DELETE", self.path(obj))

    def items(self, api_version: str, kind: str, namespace: Optional[str] = None) -> list[dict[str, Any]]:
        listed = self.request("GET", self.collection(api_version, kind, namespace))
        assert listed.ok, listed.message
        return listed.body["items"]

    def must(self, response: Response, what: str) -> Any:
        assert response.ok, f"{what}: HTTP {response.status}: {response.message}"
        return response.body

    def wait_established(self, crds: Iterable[dict[str, Any]], timeout: float = 60.0) -> None:
        """Until the server serves every CRD's kinds."""
        names = [crd["metadata"]["name"] for crd in crds]

        def established() -> bool:
            for name in names:
                found = self.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
                conditions = {c["type"]: c["status"] for c in (found.body.get("status") or {}).get("conditions") or []}
                if conditions.get("Established") != "True":
                    return False
            return True

        wait_until(established, timeout=timeout, interval=0.2, what="the CRDs established")
        self._resources.clear()  # discovery changed

    def can(self, user: str, verb: str, resource: str, namespace: str = "", group: str = "",
            subresource: str = "", name: str = "") -> bool:
        """Whether RBAC lets `user` do it, as the server decides (a SubjectAccessReview)."""
        attributes = {"verb": verb, "resource": resource, "group": group, "namespace": namespace,
                      "subresource": subresource, "name": name}
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                  "spec": {"user": user, "groups": _groups_of(user),
                           "resourceAttributes": {k: v for k, v in attributes.items() if v}}}
        answer = self.must(self.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review), "review")
        return bool(answer["status"].get("allowed"))


def _write_params(dry_run: bool, manager: str) -> dict[str, str]:
    """A write under `manager`, an unknown field refused, persisted unless a dry run."""
    return {"fieldManager": manager, "fieldValidation": "Strict", **({"dryRun": "All"} if dry_run else {})}


def _groups_of(user: str) -> list[str]:
    """The groups the server puts a user in: a service account's are its namespace's and all of them."""
    if user.startswith("system:serviceaccount:"):
        namespace = user.split(":")[2]
        return ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"]
    return ["system:authenticated"]


def service_account(namespace: str, name: str) -> str:
    """The user name a service account's token authenticates as."""
    return f"system:serviceaccount:{namespace}:{name}"


# ------------------------------------------------------------------------------ the servers


class ApiServer:
    """etcd and kube-apiserver (of the Kubernetes release `version`: the stack's by default) on
    loopback in `workdir`; `close()` stops both (call it in a finally)."""

    def __init__(self, workdir: Path, version: str = KUBERNETES_VERSION) -> None:
        self.workdir = workdir
        self.kubernetes_version = version
        workdir.mkdir(parents=True, exist_ok=True)
        self.pki = Pki(workdir / "pki")
        self.processes: list[Process] = []
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        client, peer, secure = free_port(), free_port(), free_port()
        etcd = f"http://127.0.0.1:{client}"
        self.processes.append(Process(
            [binary("etcd"), "--name=loopback", f"--data-dir={self.workdir / 'etcd'}",
             f"--listen-client-urls={etcd}", f"--advertise-client-urls={etcd}",
             f"--listen-peer-urls=http://127.0.0.1:{peer}", f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
             f"--initial-cluster=loopback=http://127.0.0.1:{peer}",
             # A test's data need not survive a power cut.
             "--unsafe-no-fsync", "--log-level=warn"], self.workdir / "etcd.log"))
        self.url = f"https://127.0.0.1:{secure}"
        self.admin_credentials = self.pki.client("admin", [MASTERS])
        self.processes.append(Process(
            [binary("kube-apiserver", self.kubernetes_version), f"--etcd-servers={etcd}",
             "--bind-address=127.0.0.1", f"--secure-port={secure}",
             # Its own address, published in the `kubernetes` Service's endpoints: not loopback,
             # which Endpoints refuse; and with no reconciler, no endpoints are published at all.
             "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
             f"--tls-cert-file={self.pki.server.cert}", f"--tls-private-key-file={self.pki.server.key}",
             f"--client-ca-file={self.pki.ca}",
             f"--service-account-issuer={ISSUER}", f"--service-account-key-file={self.pki.service_account_public_key}",
             f"--service-account-signing-key-file={self.pki.service_account_key}",
             f"--service-cluster-ip-range={SERVICE_CIDR}", "--authorization-mode=Node,RBAC",
             # PodSecurity is on by default; named so that it stays on. Privileged pods are allowed
             # by the cluster (as on EKS): Pod Security decides per namespace.
             "--enable-admission-plugins=NodeRestriction,PodSecurity", "--allow-privileged=true",
             "--profiling=false", f"--cert-dir={self.workdir / 'apiserver-certs'}"],
            self.workdir / "kube-apiserver.log"))
        self.admin = Kube(self.url, self.admin_credentials)

        def ready() -> bool:
            for process in self.processes:
                assert process.running(), f"{process.args[0]} exited:\n{process.tail()}"
            try:
                return self.admin.request("GET", "/readyz").ok
            except OSError:
                return False

        wait_until(ready, timeout=90, interval=0.2, what="kube-apiserver ready")

    def version(self) -> str:
        return self.admin.must(self.admin.request("GET", "/version"), "version")["gitVersion"]

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()


# ------------------------------------------------------------------------------ addresses


def host_address() -> str:
    """A non-loopback IPv4 address of this machine (EndpointSlices refuse loopback addresses): the
    one its default route leaves from. No packet is sent: a UDP socket only picks its source."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1 (RFC 5737): never routed anywhere real
        return probe.getsockname()[0]

