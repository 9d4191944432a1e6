"""Stack files mutated at random through the real render: a render, or exit 2 with one clean line
per problem; never a traceback.

Both stack files are mutated: values changed to other types, dates, huge numbers, broken URLs,
durations, sizes, ARNs and regions, nulls, lists for objects; keys deleted, misspelled or added;
secrets set in plain text; and the text itself broken (tabs, `config:` as a list or a string,
stray characters, truncation). Derandomized: every run of the same code tries the same cases.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import re
from collections import Counter
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.schema import NAMESPACE, describe
from config.secrets import SECRET_KEYS
from config.settings import Settings
from tests.support import ROOT
from tools import render

# Hundreds of stack files through the program, seconds of it: in make test's serial phase.
pytestmark = pytest.mark.variants

STACKS = ("dev", "prod")
BASE = {stack: (ROOT / f"Pulumi.{stack}.yaml").read_text() for stack in STACKS}
EXAMPLES = 100
"""Per stack file: two tests, which a parallel run spreads over its workers."""

# What a clean refusal looks like: a config line naming the full key, or the file and the line.
PROBLEM_LINE = re.compile(
    rf"{NAMESPACE}:.*?: (got .*, expected .+|unknown key.*|missing, expected .+|is set in plain text, expected a secret: .+)"
    # A key of another namespace: a misspelled one, or a provider's the program never reads.
    r"|[^:\s]+:.*?: (unknown namespace .+|ignored, expected no .+)"
)


def file_line(stack: str) -> re.Pattern:
    return re.compile(rf"Pulumi\.{stack}\.yaml(:[0-9]+(:[0-9]+)?)?: .+")


KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
OIDC_PROVIDER = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE"
ANY = [
    None, True, False, 0, -1, 7, 2**31, 10**30, 10**400, 1.5, float("inf"), float("nan"), "", "x", "true",
    datetime.date(2024, 1, 1), datetime.datetime(2024, 1, 1, 12, 30), [], ["a"], [{"a": 1}], {}, {"a": "b"},
    "\u00e9t\u00e9", "a\nb", "x" * 300, "https://example.com",
]
BY_TYPE = {
    "duration": ["30s", "5m", "1h30m", "15d", "30m1h", "1m1m", "5m\n", "\u0665m", "0s", "1h 30m", "293y", "90d", "1ms", "2w"],
    "size": ["50GB", "100Gi", "100Gb", "-5Gi", "1.5Gi", "17Ti", "0B", "\u0665Gi", "10Gi\n", "16Ti", "65Ti"],
    "url": ["https://..", "http://x:0", "https://example.com:65536", "ftp://example.com", "https://user:pw@example.com",
            "https://example.com/path", "http://example.com", "https://example.com\n", "http://10.0.0.1:9090",
            "https://300.1.1.1", "https://-x.example.com"],
    "ARN": ["*", "arn:aws:kms:*:123456789012:key/*", "arn:aws:kms:us-east-1:123456789012:alias/x", KMS_KEY,
            "arn:aws:iam::123456789012:role/x", OIDC_PROVIDER, KMS_KEY + "\n", "arn:aws:kms:us-east-1:1:key/k"],
    "region": ["us-east-1", "eu-west-2", "us-gov-west-1", "us-east", "US-EAST-1", "us-east-1\n", "mars-north-1"],
    "cpu": ["200m", "1", "1.5", 2, 0.5, "1e3", "99999", "\u0661"],
    "memory": ["512Mi", "4Gi", "512K", "512k", "99999Ti", "1.5Gi", 512],
    "email": ["oncall@example.com", "not-an-email", "a@b", "oncall@example.com\n"],
    "hostname": ["grafana.example.com", "grafana", "https://grafana.example.com/", "g.example.com\n", "1.2.3.4"],
    "name": ["ok-name", "Upper", "a" * 64, "-x", "name\n", "x"],
    "integer": [1, 3, 0, -5, 3000, 16000, 2**31, 10**20, "7", "\u0667", 2.5, "1e3"],
    "number": [0.05, 1, 0.999, 0, -1, 10**400, "0.5", "nan", "inf", "\u0660.5", 1e308],
    "boolean": [True, False, "true", "yes", 1, "False"],
}
UNKNOWN_KEYS = ["retension", "replicaz", "enabled", "extra", "Prometheus", "x"]


def schema_keys() -> list[tuple[str, str]]:
    """(dotted key, type) of every settings key, `[]` for an item of a list."""
    return [(doc.key, doc.type) for doc in describe(Settings, "")]


SCHEMA_KEYS = schema_keys()


def pool(type_name: str) -> list[Any]:
    for marker, values in BY_TYPE.items():
        if marker in type_name:
            return values
    choices = re.findall(r"'([^']*)'", type_name)  # a Literal: 'a' | 'b'
    return choices + ["other"] if choices else []


def set_path(config: dict, dotted: str, value: Any) -> None:
    """Set `a.b[].c` under config (top-level keys namespaced), making what is missing."""
    parts = dotted.split(".")
    top = f"{NAMESPACE}:{parts[0]}"
    if len(parts) == 1:
        config[top] = value
        return
    node = config.setdefault(top, {})
    if not isinstance(node, dict):
        node = config[top] = {}
    for part in parts[1:-1]:
        name, is_list = part.removesuffix("[]"), part.endswith("[]")
        child = node.get(name)
        if is_list:
            if not isinstance(child, list) or not child or not isinstance(child[0], dict):
                child = node[name] = [{}]
            node = child[0]
        else:
            if not isinstance(child, dict):
                child = node[name] = {}
            node = child
    node[parts[-1].removesuffix("[]")] = value


def containers(node: Any, path: tuple = ()) -> list[tuple]:
    """Paths (keys and indexes) of every value under node."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        found.append(path + (key,))
        found += containers(child, path + (key,))
    return found


def misspell(key: str, i: int) -> str:
    i %= max(len(key) - 1, 1)
    return key[:i] + key[i + 1:i + 2] + key[i:i + 1] + key[i + 2:] if len(key) > 1 else key + "x"


@st.composite
def data_mutation(draw, config: dict) -> None:
    kind = draw(st.sampled_from(["set", "set", "set", "retype", "delete", "misspell", "unknown", "listify", "secret"]))
    if kind == "set":
        key, type_name = draw(st.sampled_from(SCHEMA_KEYS))
        set_path(config, key, draw(st.sampled_from(pool(type_name) + ANY if draw(st.booleans()) else pool(type_name) or ANY)))
        return
    if kind == "secret":
        secret = draw(st.sampled_from(SECRET_KEYS)).name
        value = draw(st.sampled_from(["https://hooks.example.com/x", {"secure": "v1:AAAA"}, None, 5]))
        config[draw(st.sampled_from([f"{NAMESPACE}:{secret}", secret]))] = value
        return
    paths = containers(config)
    path = draw(st.sampled_from(paths))
    parent = config
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if kind == "retype":
        parent[last] = draw(st.sampled_from(ANY))
    elif kind == "listify":
        parent[last] = [parent[last]]
    elif kind == "delete":
        del parent[last]
    elif isinstance(parent, dict) and kind == "misspell":
        parent[misspell(str(last), draw(st.integers(0, 40)))] = parent.pop(last)
    elif isinstance(parent, dict):
        parent[draw(st.sampled_from(UNKNOWN_KEYS))] = draw(st.sampled_from(ANY))


@st.composite
def text_mutation(draw, text: str) -> str:
    lines = text.splitlines(keepends=True)
    kind = draw(st.sampled_from(["tab", "config-list", "config-string", "top-list", "insert", "truncate", "duplicate"]))
    if kind == "tab":
        indented = [i for i, line in enumerate(lines) if line.startswith("  ")]
        i = draw(st.sampled_from(indented))
        lines[i] = "\t" + lines[i][2:]
        return "".join(lines)
    if kind == "config-list":
        return "config:\n" + "".join(f"  - {line.strip()}\n" for line in lines if line.startswith("  webhook"))
    if kind == "config-string":
        return "config: " + draw(st.sampled_from(["webhook-monitoring", "'a string'", "42", "2024-01-01"])) + "\n"
    if kind == "top-list":
        return "- config\n" + text
    at = draw(st.integers(0, len(text)))
    if kind == "insert":
        return text[:at] + draw(st.sampled_from(list(":[]{}\"'&*!%@`|>#-?,\t\x00\u00e9"))) + text[at:]
    if kind == "truncate":
        return text[:at]
    i = draw(st.integers(0, len(lines) - 1))
    return "".join(lines[:i + 1] + lines[i:])


@st.composite
def stack_files(draw, stack: str) -> tuple[str, str]:
    if draw(st.integers(0, 5)) == 0:
        return stack, draw(text_mutation(BASE[stack]))
    document = yaml.safe_load(BASE[stack])
    for _ in range(draw(st.integers(1, 4))):
        draw(data_mutation(document["config"]))
    return stack, yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


@pytest.mark.parametrize("stack_name", STACKS)
def test_every_mutated_stack_file_renders_or_fails_with_one_clean_line_per_problem(stack_name, tmp_path):
    outcomes: Counter = Counter()

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, print_blob=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(case=stack_files(stack_name))
    def render_case(case: tuple[str, str]) -> None:
        stack, text = case
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(text)
        err = io.StringIO()
        outcomes["tried"] += 1
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = render.render(stack, root=tmp_path)
        except BaseException:
            outcomes["tracebacks"] += 1
            raise
        lines = err.getvalue().splitlines()
        if code == 0:
            outcomes["rendered"] += 1
            return
        assert code == 2, (code, lines)
        assert lines, "a refusal says why"
        if file_line(stack).fullmatch(lines[0]):
            assert len(lines) == 1, lines
            outcomes["malformed"] += 1
        else:
            for line in lines:
                assert PROBLEM_LINE.fullmatch(line), line
            assert len(lines) == len(set(lines)), lines
        outcomes["clean errors"] += 1

    render_case()
    print(f"\nstack-file fuzz, {stack_name}: {outcomes['tried']} tried, {outcomes['clean errors']} clean errors "
          f"({outcomes['malformed']} of them malformed files), {outcomes['rendered']} rendered, "
          f"{outcomes['tracebacks']} tracebacks")
    assert outcomes["tracebacks"] == 0
    assert outcomes["tried"] == outcomes["clean errors"] + outcomes["rendered"] >= EXAMPLES * 9 // 10
    # Every outcome is reached: renders, refused values, refused files.
    assert outcomes["rendered"] >= EXAMPLES // 60
    assert outcomes["clean errors"] - outcomes["malformed"] >= EXAMPLES // 3
    assert outcomes["malformed"] >= EXAMPLES // 50
