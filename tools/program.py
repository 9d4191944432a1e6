"""The program run offline for a stack file, as `pulumi preview` would run it: the stack file read as
the Pulumi CLI reads it, secrets as placeholders, the settings validated (with what the stack must
not share with the stack files beside it), then the real program under the mock runtime; and the
same for another checkout, with its own code and requirements. `make render` (tools/render.py),
`make verify`, `make diff`, the policy run and the chart templating stand on it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from config import ConfigError, Settings, load, naming
from config.schema import NAMESPACE
from config.secrets import SECRET_KEYS
from monitoring.checks import content_problems
from tools.mock_runtime import INFRA_OUTPUTS, ROOT, run_program
from tools.rendered import ALERTMANAGER_CONFIG_KEY, RenderedStack
from tools.routing import routing_problems
from tools.stacks import stacks


def secret_placeholder(key: str, settings: Settings | None = None) -> str:
    """A readable stand-in for a secret; URL-shaped where the secret is a URL, so the rendered
    Alertmanager configuration still passes `amtool check-config`; of the secret's own shape where it
    has one (given the stack's settings)."""
    name = key.split(":", 1)[1]
    secret = next((k for k in SECRET_KEYS if k.name == name), None)
    if secret is not None and secret.placeholder is not None and settings is not None:
        return secret.placeholder(settings)
    if secret is not None and secret.example.startswith("https://"):
        return f"https://secret.invalid/{name}"
    return f"<secret {key}>"


def stack_file(stack: str, root: Path = ROOT) -> Path:
    return root / f"Pulumi.{stack}.yaml"


class StackFileError(Exception):
    """A stack file that cannot be read as one: one line naming the file and the line."""


class _StackFileConstructor(yaml.constructor.SafeConstructor):
    """YAML as the Pulumi CLI reads a stack file (Go's yaml.v2 into untyped values): a date or a
    time stays the text written, a key is its text, a whole number too long to read stays text.
    A key given twice is an error: YAML keys are unique, and a second block of a section would
    silently replace the first."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict:
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(None, None, f"expected a mapping, found {node.id}", node.start_mark)
        first_line: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, f"a key must be a plain value, found a {key_node.id}", key_node.start_mark
                )
            if key_node.value in first_line:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key_node.value}' given twice (first on line {first_line[key_node.value] + 1})",
                    key_node.start_mark,
                )
            first_line[key_node.value] = key_node.start_mark.line
        self.flatten_mapping(node)  # `<<: *anchor` merges; the keys written win
        mapping = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, f"a key must be a plain value, found a {key_node.id}", key_node.start_mark
                )
            mapping[key_node.value] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_yaml_int(self, node: yaml.Node) -> Any:
        try:
            return super().construct_yaml_int(node)
        except ValueError:  # more digits than Python reads
            return node.value

    def construct_yaml_binary(self, node: yaml.Node) -> str:
        return super().construct_yaml_binary(node).decode("utf-8", "replace")

    def construct_yaml_set(self, node: yaml.Node):
        data: dict = {}
        yield data
        data.update(dict.fromkeys(self.construct_mapping(node)))


_StackFileConstructor.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: node.value)
_StackFileConstructor.add_constructor("tag:yaml.org,2002:int", _StackFileConstructor.construct_yaml_int)
_StackFileConstructor.add_constructor("tag:yaml.org,2002:binary", _StackFileConstructor.construct_yaml_binary)
_StackFileConstructor.add_constructor("tag:yaml.org,2002:set", _StackFileConstructor.construct_yaml_set)


class _FastStackFileLoader(_StackFileConstructor, yaml.CSafeLoader):
    """libyaml's parser: the stack file of 200 services reads in 6 ms instead of PyYAML's 53."""


class _StackFileLoader(_StackFileConstructor, yaml.SafeLoader):
    """PyYAML's parser, which words a mistake better (the character, the place): it reads again a
    file libyaml refused."""


_NODE_KINDS = {"scalar": "a single value", "sequence": "a list", "mapping": "a mapping"}


def _at(path: Path, mark: Any, message: str) -> StackFileError:
    where = f"{path.name}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path.name
    return StackFileError(f"{where}: {' '.join(message.split())}")


def read_stack_file(path: Path) -> tuple[dict[str, str], set[str]]:
    """The `config:` map of a stack file as the engine hands it to the program: full key -> text
    (a single value as written, an object or a list as JSON); and the keys holding a `secure:`
    value. Raises StackFileError for a file that is not a stack file."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise StackFileError(f"{path.name}: cannot be read: {err.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise StackFileError(f"{path.name}:{line}: not UTF-8 text (byte {data[err.start]:#04x})") from None
    try:
        return _config_of(path, text, _FastStackFileLoader)
    except StackFileError:
        return _config_of(path, text, _StackFileLoader)


def _config_of(path: Path, text: str, loader_class: type) -> tuple[dict[str, str], set[str]]:
    """read_stack_file's answer for `text`, read by `loader_class`."""
    loader = None
    try:
        loader = loader_class(text)
        root = loader.get_single_node()
        if root is None:
            return {}, set()
        if not isinstance(root, yaml.MappingNode):
            raise _at(path, root.start_mark, f"expected a mapping holding `config:`, found {_NODE_KINDS[root.id]}")
        document = loader.construct_document(root)
        config_node = next((v for k, v in root.value if k.value == "config"), None)
        if config_node is None or document["config"] is None:
            return {}, set()
        if not isinstance(config_node, yaml.MappingNode):
            raise _at(path, config_node.start_mark,
                      f"`config:` must be a mapping of keys to values, found {_NODE_KINDS[config_node.id]}")
        config: dict[str, str] = {}
        declared: set[str] = set()
        written: dict[str, str] = {}
        for key_node, value_node in config_node.value:
            key = key_node.value if ":" in key_node.value else f"{NAMESPACE}:{key_node.value}"
            if written.setdefault(key, key_node.value) != key_node.value:
                raise _at(path, key_node.start_mark, f"'{key_node.value}' and '{written[key]}' are the same key")
            value = document["config"][key_node.value]
            config.pop(key, None)
            declared.discard(key)
            if isinstance(value, dict) and list(value) == ["secure"] and isinstance(value["secure"], str):
                declared.add(key)
            elif isinstance(value_node, yaml.ScalarNode):
                config[key] = "null" if value is None else value_node.value
            else:
                try:
                    config[key] = json.dumps(value)
                except (ValueError, RecursionError):  # an anchor holding an alias of itself
                    raise _at(path, value_node.start_mark, f"the value of '{key_node.value}' contains itself") from None
        return config, declared
    except yaml.MarkedYAMLError as err:
        message = err.problem or err.context or "not YAML"
        if err.context and err.problem and err.problem.startswith("but "):
            message = f"{err.context}, {err.problem}"  # the composer's "expected a single document ..."
        elif err.context and err.problem and err.context_mark is not None:
            message += f" ({err.context} on line {err.context_mark.line + 1})"
        raise _at(path, err.problem_mark or err.context_mark, message) from None
    except yaml.reader.ReaderError as err:
        line = text[: err.position].count("\n") + 1
        raise StackFileError(f"{path.name}:{line}: character #x{err.character:04x} is not allowed in YAML") from None
    except RecursionError:
        raise StackFileError(f"{path.name}: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def stack_config(path: Path) -> tuple[dict[str, str], list[str]]:
    """A stack file as the engine hands it over, secrets as placeholders.

    A secret gets a placeholder when the stack file holds it (a `secure:` value) or when the
    stack's settings require it, as `pulumi up` would insist; an optional secret the stack does
    not set stays unset, so the render shows what happens without it. A secret key set in plain
    text stays as written and not secret: the program refuses it, as `pulumi preview` does.
    Raises StackFileError for a file that is not a stack file.
    """
    config, declared = read_stack_file(path)
    try:
        # Which secrets the stack needs, and the shapes of their placeholders, follow from its settings.
        settings = _settings_with_every_secret(config, declared, path.name[len("Pulumi."):-len(".yaml")])
    except ConfigError:
        settings = None
        secrets = _every_secret(config, declared)  # the program reports the problems; placeholders change none
    else:
        secrets = declared | {f"{NAMESPACE}:{k.name}" for k in SECRET_KEYS if k.required(settings)}
    config.update({key: secret_placeholder(key, settings) for key in secrets})
    return config, sorted(secrets)


def _every_secret(config: dict[str, str], declared: set[str]) -> set[str]:
    return ({f"{NAMESPACE}:{k.name}" for k in SECRET_KEYS} - set(config)) | declared


def _settings_with_every_secret(config: dict[str, str], declared: set[str], stack: str) -> Settings:
    """The settings of stack `stack`'s file, every secret a placeholder. Raises ConfigError."""
    every = _every_secret(config, declared)
    return load({**config, **{k: secret_placeholder(k) for k in every}}, every, lambda name: name, check_secrets=False,
                stack=stack)[0]


class RenderError(Exception):
    """A stack that does not render: one line per problem, the lines `pulumi preview` prints."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


def render_stack(stack: str, path: Path | None = None, root: Path = ROOT) -> tuple[Settings, RenderedStack]:
    """Run the program offline for Pulumi.<stack>.yaml of `root` (or the stack file `path`): its
    settings and what it registers. Raises RenderError before the program runs on a bad stack file (or one
    sharing what it must not with the stack files beside it), and after, on a routing Alertmanager refuses or
    Helm values for a chart the stack does not install."""
    path = path or stack_file(stack, root)
    if not path.exists():
        raise RenderError([f"no stack file {path.name}: stacks are {', '.join(stacks(root))}"])
    try:
        config, secret_keys = stack_config(path)
        # Its placeholders stand in for the secrets: their values are not judged (`pulumi preview` does).
        settings, _ = load(config, secret_keys, lambda name: config[f"{NAMESPACE}:{name}"], check_secrets=False,
                           stack=stack)
    except StackFileError as err:
        raise RenderError([str(err)]) from None
    except ConfigError as err:
        raise RenderError(err.problems) from None
    if problems := content_problems(settings) + fleet_findings(stack, settings, path.parent)[0]:
        raise RenderError(problems)
    # The infrastructure stack has the outputs the settings name (as the render has the secrets).
    cluster = settings.cluster
    outputs = dict(zip((cluster.kubeconfig_output, cluster.oidc_provider_arn_output, cluster.oidc_issuer_url_output),
                       INFRA_OUTPUTS.values()))
    run = run_program(stack, config, secret_keys, outputs)
    if run.error is not None:
        raise RenderError([f"{stack}: {run.error}"])
    if not run.resources:
        raise RenderError([f"{stack}: the program registered no resources"])
    rendered = RenderedStack.from_run(stack, run)
    problems = [f"{ALERTMANAGER_CONFIG_KEY}: {line}" for line in routing_problems(rendered.alertmanager)]
    problems += [f"{NAMESPACE}:helmValues.{chart}: got values for {chart}, expected a chart the stack installs "
                 f"({', '.join(rendered.releases)})" for chart in settings.helm_values if chart not in rendered.releases]
    if problems:
        raise RenderError(problems)
    return settings, rendered


# What two stacks must not share: one Grafana host serves one Grafana (two ingresses for one host: the
# controller picks either); a cluster (its name, or the context reaching it) is shared only by stacks whose
# names cannot clash there, both deriving theirs from the stack (tenancy.naming `derived`): two stacks of
# the fixed, legacy names make the same namespaces, release and StorageClass (docs/tenancy.md).
SHARED = (("grafana.host", lambda s: s.grafana.host, False),
          ("cluster.name", lambda s: s.cluster.name, True),
          ("cluster.kubeContext", lambda s: s.cluster.kube_context, True))


def fleet_findings(stack: str, settings: Settings, folder: Path = ROOT) -> tuple[list[str], list[str]]:
    """(refusals, warnings) of what the stack shares with the other stacks whose files are in `folder` (the
    fleet: the stack files beside its own); a stack file that does not load is warned about."""
    refused, warned = [], []
    for other in stacks(folder):
        if other == stack:
            continue
        path = stack_file(other, folder)
        theirs = _stack_file_settings(other, path, path.stat().st_mtime_ns)
        if theirs is None:
            warned.append(f"{NAMESPACE}: stack {other} does not load: what this stack shares with it is not checked")
            continue
        for key, value_of, shared_by_derived_names in SHARED:
            value = value_of(settings)
            if value is None or value != value_of(theirs):
                continue
            if not shared_by_derived_names or naming.legacy(settings) or naming.legacy(theirs):
                refused.append(f"{NAMESPACE}:{key}: got {value!r}, expected a value of this stack's own: stack {other} "
                               f"has it too (a stack file copied from {other} and not changed?)"
                               + ("" if not shared_by_derived_names else
                                  "; stacks share a cluster only with tenancy.naming derived, both"))
    return refused, warned


@functools.lru_cache(maxsize=None)
def _stack_file_settings(stack: str, path: Path, modified: int) -> Settings | None:
    """The settings of another stack's file (None when it does not load), once per version of the file."""
    try:
        return _settings_with_every_secret(*read_stack_file(path), stack)
    except (StackFileError, ConfigError):
        return None


# Render in another checkout with its own code: `python -c` run there imports that checkout's modules.
_RENDER_THERE = "import sys, pathlib, tools.render as r; sys.exit(r.render(sys.argv[1], out_root=pathlib.Path(sys.argv[2])))"


def installed_differently(requirements: Path) -> list[str]:
    """The `name==version` pins of a requirements file this interpreter does not have installed."""
    wrong = []
    for line in requirements.read_text().splitlines():
        pin = line.split("#", 1)[0].strip()
        if "==" not in pin:
            continue
        name, version = (part.strip() for part in pin.split("==", 1))
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong.append(f"{name}=={version} ({installed or 'not installed'})")
    return wrong


def interpreter_for(checkout: Path) -> str:
    """A Python with the checkout's pinned requirements: this one when it has them all, else a
    virtualenv made for them once (build/venvs/<hash of the file>), as an older revision's program
    may import what this one no longer requires."""
    requirements = checkout / "requirements.txt"
    if not requirements.exists() or not installed_differently(requirements):
        return sys.executable
    venv = ROOT / "build" / "venvs" / hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    python = venv / "bin" / "python"
    if not (venv / ".installed").exists():
        print(f"{checkout.name}: its requirements differ from this virtualenv's; installing them into {venv}",
              file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "-r", str(requirements)], check=True)
        (venv / ".installed").write_text(requirements.read_text())
    return str(python)


class CheckoutError(Exception):
    """A revision git cannot check out (git's own last line)."""


def render_revision(stack: str, revision: str, workdir: Path, root: Path = ROOT) -> RenderedStack | None:
    """Pulumi.<stack>.yaml of `revision`, rendered with that revision's own code and requirements in a
    temporary git worktree under `workdir`; None when the stack file does not exist there (a new stack).
    Raises CheckoutError, or RenderError when the revision does not render it."""
    checkout = workdir / "checkout"
    added = subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", "--quiet", str(checkout), revision],
                           capture_output=True, text=True)
    if added.returncode != 0:
        raise CheckoutError((added.stderr.strip().splitlines() or ["git worktree add failed"])[-1])
    try:
        if not (checkout / f"Pulumi.{stack}.yaml").exists():
            return None
        return RenderedStack.load(render_checkout(stack, checkout, workdir / "rendered"))
    finally:
        subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(checkout)], capture_output=True)


def render_checkout(stack: str, checkout: Path, out_root: Path) -> Path:
    """Render Pulumi.<stack>.yaml of another checkout (a `git worktree` of an older revision) with that
    checkout's own code and requirements into <out_root>/<stack>/; the folder. Raises RenderError."""
    done = subprocess.run([interpreter_for(checkout), "-c", _RENDER_THERE, stack, str(out_root)], cwd=checkout,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RenderError([f"rendering {stack} in {checkout} failed:", *(done.stdout + done.stderr).splitlines()])
    return out_root / stack


