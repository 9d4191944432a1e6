"""Pulumi mocks for the Alerting component tests: they record what was registered and looked up."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime.rpc import is_rpc_secret, unwrap_rpc_secret

# Only the mock hands this out, as the integration's output: finding it in the Secret proves the
# routing key travelled through outputs.
INTEGRATION_KEY = "integration-key-from-the-pagerduty-mock"

GET_USER = "pagerduty:index/getUser:getUser"
GET_SCHEDULE = "pagerduty:index/getSchedule:getSchedule"


def user_id(email: str) -> str:
    return "P-USER-" + email.split("@")[0].upper()


def schedule_id(name: str) -> str:
    return "P-SCHEDULE-" + name.replace(" ", "-").upper()


class AlertingMocks(pulumi.runtime.Mocks):
    """Echoes inputs back as state; PagerDuty lookups answer with IDs derived from the query."""

    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []
        self.calls: list[pulumi.runtime.MockCallArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        state = dict(args.inputs)
        if args.typ == "pagerduty:index/serviceIntegration:ServiceIntegration":
            state["integrationKey"] = INTEGRATION_KEY
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        self.calls.append(args)
        if args.token == GET_USER:
            email = args.args["email"]
            return {"id": user_id(email), "email": email, "name": email.split("@")[0]}
        if args.token == GET_SCHEDULE:
            name = args.args["name"]
            return {"id": schedule_id(name), "name": name}
        raise AssertionError(f"unexpected invoke {args.token}")

    def of_type(self, typ: str) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str) -> pulumi.runtime.MockResourceArgs:
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, got {[r.name for r in found]}"
        return found[0]


def secret_value(value: Any) -> Any:
    """The value inside a secret input; fails when the input is not marked secret."""
    assert is_rpc_secret(value), f"expected a secret, got plain {value!r}"
    return unwrap_rpc_secret(value)
