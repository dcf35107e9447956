"""template.yaml as CloudFormation would deploy it: translated offline, conditions evaluated."""

from collections.abc import Callable
from functools import cache
from typing import Any

from tests.infra.translate import REQUIRED_PARAMETERS, translate

NO_VALUE = {"Ref": "AWS::NoValue"}


@cache
def _translated(overrides: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    return translate(dict(overrides))


def _parameter_values(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, spec in template["Parameters"].items():
        raw = str(overrides.get(name, REQUIRED_PARAMETERS.get(name, spec.get("Default", ""))))
        values[name] = raw.split(",") if spec["Type"] == "CommaDelimitedList" else raw
    return values


class Deployment:
    """The translated template as CloudFormation would deploy it for one set of parameter values."""

    def __init__(self, **overrides: str) -> None:
        template = _translated(tuple(sorted(overrides.items())))
        self.parameters = _parameter_values(template, overrides)
        self._conditions = template.get("Conditions", {})
        self._condition_cache: dict[str, bool] = {}
        self.resources = {
            logical_id: self.resolve(resource)
            for logical_id, resource in template["Resources"].items()
            if "Condition" not in resource or self.condition(resource["Condition"])
        }
        self.outputs = {
            name: self.resolve(output)
            for name, output in template.get("Outputs", {}).items()
            if "Condition" not in output or self.condition(output["Condition"])
        }

    def condition(self, name: str) -> bool:
        if name not in self._condition_cache:
            self._condition_cache[name] = bool(self._evaluate(self._conditions[name]))
        return self._condition_cache[name]

    def _evaluate(self, node: Any) -> Any:
        if not (isinstance(node, dict) and len(node) == 1):
            return node
        ((key, arg),) = node.items()
        operations: dict[str, Callable[[], Any]] = {
            "Ref": lambda: self.parameters[arg],
            "Condition": lambda: self.condition(arg),
            "Fn::Equals": lambda: str(self._evaluate(arg[0])) == str(self._evaluate(arg[1])),
            "Fn::Not": lambda: not self._evaluate(arg[0]),
            "Fn::And": lambda: all(self._evaluate(item) for item in arg),
            "Fn::Or": lambda: any(self._evaluate(item) for item in arg),
            "Fn::Join": lambda: arg[0].join(self._evaluate(arg[1])),
        }
        return operations[key]() if key in operations else node

    def resolve(self, node: Any) -> Any:
        """Fn::If branches chosen and AWS::NoValue dropped; every other intrinsic left as written."""
        if isinstance(node, dict):
            if set(node) == {"Fn::If"}:
                name, when_true, when_false = node["Fn::If"]
                return self.resolve(when_true if self.condition(name) else when_false)
            resolved = {key: self.resolve(value) for key, value in node.items()}
            return {key: value for key, value in resolved.items() if value != NO_VALUE}
        if isinstance(node, list):
            return [item for item in (self.resolve(value) for value in node) if item != NO_VALUE]
        return node

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {key: value for key, value in self.resources.items() if value["Type"] == resource_type}

    def one(self, resource_type: str) -> tuple[str, dict[str, Any]]:
        matches = self.of_type(resource_type)
        assert len(matches) == 1, f"expected one {resource_type}, found {sorted(matches)}"
        ((logical_id, resource),) = matches.items()
        return logical_id, resource

    def properties(self, logical_id: str) -> dict[str, Any]:
        properties: dict[str, Any] = self.resources[logical_id].get("Properties", {})
        return properties

    @property
    def function(self) -> dict[str, Any]:
        return self.properties("DagSyncFunction")

    def role_statements(self, role_id: str) -> list[dict[str, Any]]:
        statements = []
        for policy in self.properties(role_id).get("Policies", []):
            statements.extend(as_list(policy["PolicyDocument"]["Statement"]))
        for policy in self.of_type("AWS::IAM::Policy").values():
            if {"Ref": role_id} in policy["Properties"]["Roles"]:
                statements.extend(as_list(policy["Properties"]["PolicyDocument"]["Statement"]))
        return statements

    def statements_with(self, role_id: str, action: str) -> list[dict[str, Any]]:
        return [s for s in self.role_statements(role_id) if action in as_list(s["Action"])]

    def alarm_on(self, metric_name: str) -> dict[str, Any]:
        alarms: list[dict[str, Any]] = [
            alarm["Properties"]
            for alarm in self.of_type("AWS::CloudWatch::Alarm").values()
            if alarm["Properties"].get("MetricName") == metric_name
        ]
        assert len(alarms) == 1, f"expected one alarm on {metric_name}, found {len(alarms)}"
        return alarms[0]

    def insights_alarm_on(self, metric_name: str) -> dict[str, Any]:
        """The alarm whose Metrics Insights query selects `metric_name`."""
        alarms: list[dict[str, Any]] = [
            alarm["Properties"]
            for alarm in self.of_type("AWS::CloudWatch::Alarm").values()
            if any(
                f"({metric_name})" in query.get("Expression", "")
                for query in alarm["Properties"].get("Metrics", [])
            )
        ]
        assert len(alarms) == 1, f"expected one alarm querying {metric_name}, found {len(alarms)}"
        return alarms[0]

    @property
    def alarm_topic(self) -> dict[str, str]:
        """What the template gives as the alarm topic: the created topic, or the given ARN."""
        return {"Ref": "AlarmTopic"} if self.condition("CreateAlarmTopic") else {"Ref": "AlarmTopicArn"}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
