"""AWS rules the stack's S3 buckets and IAM roles must follow; the settings' checks read the same ones.

Sources (docs/platform-rules.md gives the quotes):
- S3 general-purpose bucket naming rules,
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html.
- IRSA trust policies, awsdocs/amazon-eks-user-guide `latest/ug/manage-access/aws-access/service-accounts.adoc`
  (https://docs.aws.amazon.com/eks/latest/userguide/associate-service-account-role.html): principal the
  cluster's OIDC provider, `<issuer>:sub` the service account `system:serviceaccount:<namespace>:<name>`,
  `<issuer>:aud` `sts.amazonaws.com`, the issuer without `https://`.
- S3 lifecycle: expiration counts days from an object's creation (rounded to the next midnight UTC),
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-expire-general-considerations.html.
- Tags, https://docs.aws.amazon.com/tag-editor/latest/userguide/tagging.html: at most 50 per resource, a
  key of 1 to 128 characters, a value of at most 256, letters, digits, spaces and `+ - = . _ : / @`, and
  no `aws:` prefix (in any case: AWS's own).
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any, Iterator, Optional

from policy.duration import parse_duration_ms

BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
# What Pulumi appends to an AWS resource's name when it names the bucket itself: `-` and 7 characters.
AWS_AUTONAME_LENGTH = 8
# What pulumi-aws appends to a `bucketPrefix` or `namePrefix` (terraform-plugin-sdk helper/id
# PrefixedUniqueId: UniqueIDSuffixLength); hence its "at most 37 characters" of bucket prefix and
# 38 of role name prefix, S3 names being at most 63 and IAM role names at most 64.
UNIQUE_SUFFIX_LENGTH = 26
BUCKET_PREFIX_MAX = 63 - UNIQUE_SUFFIX_LENGTH
ROLE_PREFIX_MAX = 64 - UNIQUE_SUFFIX_LENGTH

STS_AUDIENCE = "sts.amazonaws.com"
OIDC_PROVIDER_ARN = re.compile(r"arn:aws(?:-[a-z]+)*:iam::[0-9]{12}:oidc-provider/(?P<issuer>.+)")
SERVICE_ACCOUNT_SUBJECT = re.compile(r"system:serviceaccount:(?P<namespace>[a-z0-9-]+):(?P<name>[a-z0-9.-]+)")


def bucket_name_problem(name: str) -> Optional[str]:
    """What S3 refuses in a general-purpose bucket name; None when it takes it."""
    if not 3 <= len(name) <= 63:
        return f"{len(name)} characters: S3 bucket names are 3 to 63 characters long"
    if not BUCKET_NAME.fullmatch(name):
        return "S3 bucket names are lower-case letters, digits, '.' and '-', beginning and ending with a letter or digit"
    if ".." in name:
        return "S3 bucket names must not contain two adjacent periods"
    try:
        ipaddress.IPv4Address(name)
        return "S3 bucket names must not be formatted as an IP address"
    except ValueError:
        pass
    for prefix in BUCKET_RESERVED_PREFIXES:
        if name.startswith(prefix):
            return f"S3 bucket names must not start with the prefix {prefix}"
    for suffix in BUCKET_RESERVED_SUFFIXES:
        if name.endswith(suffix):
            return f"S3 bucket names must not end with the suffix {suffix} (reserved)"
    return None


TAGS_PER_RESOURCE = 50
_TAG_TEXT = re.compile(r"[\w\s+\-=.:/@]*")


def tag_problem(key: str, value: str) -> Optional[str]:
    """What AWS refuses in one tag; None when it takes it."""
    if not 1 <= len(key) <= 128:
        return f"a key of {len(key)} characters: tag keys are 1 to 128 characters long"
    if len(value) > 256:
        return f"a value of {len(value)} characters: tag values are at most 256 characters long"
    if not (_TAG_TEXT.fullmatch(key) and _TAG_TEXT.fullmatch(value)):
        return "tags hold letters, digits, spaces and + - = . _ : / @ only"
    if key.lower().startswith("aws:") or value.lower().startswith("aws:"):
        return "the aws: prefix is reserved for AWS's own tags"
    return None


def lifecycle_outlives_retention(expiration_days: int, retention_seconds: float) -> bool:
    """Whether an S3 expiry of `expiration_days` deletes nothing the store still keeps (it keeps data
    `retention_seconds`): the expiry must be longer than the retention."""
    return expiration_days * 86400 > retention_seconds


def duration_seconds(text: Any) -> Optional[float]:
    """A store's retention as its configuration writes it (`2160h`, `90d`, `336h`: Prometheus' grammar,
    policy/duration.py); None otherwise."""
    ms = parse_duration_ms(str(text))
    return None if ms is None else ms / 1000


def trust_policy_problems(document: Any) -> Iterator[str]:
    """What makes a role's web-identity trust policy not the IRSA one of the EKS guide: its principal an
    OIDC provider, `StringEquals` on exactly named service accounts (`sub`) and the STS audience (`aud`),
    keyed by that provider's issuer."""
    try:
        policy = json.loads(document) if isinstance(document, str) else document
    except ValueError:
        yield "the trust policy is not JSON"
        return
    for i, statement in enumerate((policy or {}).get("Statement") or []):
        actions = statement.get("Action")
        if "sts:AssumeRoleWithWebIdentity" not in (actions if isinstance(actions, list) else [actions]):
            continue
        where = f"Statement[{i}]"
        federated = (statement.get("Principal") or {}).get("Federated")
        match = OIDC_PROVIDER_ARN.fullmatch(str(federated))
        if match is None:
            yield f"{where}: Principal.Federated {federated!r} is not an IAM OIDC provider ARN"
            continue
        issuer = match["issuer"]
        condition = statement.get("Condition") or {}
        if set(condition) - {"StringEquals"}:
            yield (f"{where}: conditions {sorted(set(condition) - {'StringEquals'})} widen who may assume the role: "
                   "IRSA trusts exact service accounts with StringEquals")
        equals = condition.get("StringEquals") or {}
        subjects = equals.get(f"{issuer}:sub")
        subjects = subjects if isinstance(subjects, list) else [subjects] if subjects else []
        if not subjects:
            yield f"{where}: no {issuer}:sub condition: any service account of the cluster may assume the role"
        for subject in subjects:
            if not SERVICE_ACCOUNT_SUBJECT.fullmatch(str(subject)):
                yield f"{where}: {issuer}:sub {subject!r} is not one service account (system:serviceaccount:<namespace>:<name>)"
        if equals.get(f"{issuer}:aud") != STS_AUDIENCE:
            yield f"{where}: {issuer}:aud is {equals.get(f'{issuer}:aud')!r}, expected {STS_AUDIENCE!r}"
        strangers = sorted(k for k in equals if not k.startswith(f"{issuer}:"))
        if strangers:
            yield f"{where}: condition keys {strangers} are not of the provider's issuer {issuer}"


def trusted_service_accounts(document: Any) -> list[tuple[str, str]]:
    """(namespace, name) of each service account a trust policy names."""
    try:
        policy = json.loads(document) if isinstance(document, str) else document
    except ValueError:
        return []
    found = []
    for statement in (policy or {}).get("Statement") or []:
        for key, values in ((statement.get("Condition") or {}).get("StringEquals") or {}).items():
            if key.endswith(":sub"):
                for subject in values if isinstance(values, list) else [values]:
                    if (m := SERVICE_ACCOUNT_SUBJECT.fullmatch(str(subject))) is not None:
                        found.append((m["namespace"], m["name"]))
    return found
