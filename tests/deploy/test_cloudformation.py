"""deploy/ai-worker.yaml: cfn-lint clean, the queue contract of ai_worker.admin, least-privilege roles, ECS task
definitions that botocore's RegisterTaskDefinition shape accepts, and backlog-per-task scaling (GPU to zero)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import yaml
from botocore.validate import validate_parameters

from ai_worker.admin import MAX_RECEIVE_COUNT, VISIBILITY_BY_TIER
from ai_worker.config import Settings
from ai_worker.tiers import Tier

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "deploy" / "ai-worker.yaml"
FOURTEEN_DAYS_S = 14 * 24 * 3600
STOP_TIMEOUT_S = 120
TIER_QUEUE: dict[Tier, str] = {"lite": "LiteQueue", "basic": "BasicQueue", "premium": "PremiumQueue"}


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form intrinsics (!Ref, !Sub, !GetAtt, ...) as their long form."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Ref": value} if suffix == "Ref" else {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return {name: r["Properties"] for name, r in template["Resources"].items()}


def test_cfn_lint_clean(tool: Callable[[str], str]) -> None:
    run = subprocess.run([tool("cfn-lint"), str(TEMPLATE)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_queues_follow_the_workers_contract(template: dict[str, Any], resources: dict[str, Any]) -> None:
    prefix = template["Parameters"]["NamePrefix"]["Default"]
    settings = Settings()
    for tier, name in TIER_QUEUE.items():
        queue, dlq = resources[name], resources[name.replace("Queue", "Dlq")]
        # The default prefix yields the names the worker uses without configuration.
        assert queue["QueueName"] == {"Fn::Sub": settings.queue_names[tier].replace(prefix, "${NamePrefix}", 1)}
        assert dlq["QueueName"] == {"Fn::Sub": settings.dlq_name(tier).replace(prefix, "${NamePrefix}", 1)}
        assert queue["VisibilityTimeout"] == VISIBILITY_BY_TIER[tier]
        assert queue["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [name.replace("Queue", "Dlq"), "Arn"]},
            "maxReceiveCount": MAX_RECEIVE_COUNT,
        }
        assert queue["MessageRetentionPeriod"] == dlq["MessageRetentionPeriod"] == FOURTEEN_DAYS_S
    assert resources["ResultsQueue"]["QueueName"] == {"Fn::Sub": "${NamePrefix}-results"}
    assert settings.results_queue == f"{prefix}-results"


def _statements(resources: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """Every statement the role gets: its inline policies and the managed policies of this template."""
    documents = [p["PolicyDocument"] for p in resources[role]["Policies"]]
    documents += [resources[ref["Ref"]]["PolicyDocument"] for ref in resources[role].get("ManagedPolicyArns", [])]
    return [s for d in documents for s in d["Statement"]]


@pytest.mark.parametrize(("role", "tiers"), [("CpuTaskRole", ("lite", "basic")), ("GpuTaskRole", ("premium",))])
def test_task_roles_reach_only_their_queues_and_prefixes(resources: dict[str, Any], role: str, tiers: tuple) -> None:
    statements = _statements(resources, role)
    assert all(s["Effect"] == "Allow" and s["Resource"] != "*" for s in statements)
    consume = next(s for s in statements if "sqs:ReceiveMessage" in s["Action"])
    resources_of = consume["Resource"] if isinstance(consume["Resource"], list) else [consume["Resource"]]
    assert resources_of == [{"Fn::GetAtt": [TIER_QUEUE[t], "Arn"]} for t in tiers]
    s3_objects = [s for s in statements if any(a in ("s3:GetObject", "s3:PutObject") for a in _list(s["Action"]))]
    for statement in s3_objects:
        for arn in _list(statement["Resource"]):
            assert arn["Fn::Sub"].startswith("${ResultsBucket.Arn}/") and arn["Fn::Sub"].endswith("/*")
    assert not any(a.endswith("*") for s in statements for a in _list(s["Action"]))
    # Large embedding results are written by the premium (GPU) worker only.
    assert any("/embeddings/" in str(s["Resource"]) for s in statements) == (role == "GpuTaskRole")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _api_params(value: Any, parameters: dict[str, Any], keep_keys: bool = False) -> Any:
    """CloudFormation properties -> RegisterTaskDefinition parameters: camelCase keys, intrinsics resolved to the
    parameter defaults (or a placeholder string). Free-form maps (log driver options) keep their keys."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return str(parameters.get(value["Ref"], {}).get("Default", "placeholder"))
        if len(value) == 1 and next(iter(value)).startswith("Fn::"):
            return "placeholder"
        return {
            (k if keep_keys else k[0].lower() + k[1:]): _api_params(v, parameters, keep_keys=k == "Options")
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_api_params(v, parameters) for v in value]
    return value


@pytest.mark.parametrize("name", ["CpuTaskDefinition", "GpuTaskDefinition"])
def test_task_definitions_are_valid_register_task_definition_input(
    template: dict[str, Any], resources: dict[str, Any], name: str
) -> None:
    params = _api_params(resources[name], template["Parameters"])
    shape = botocore.session.get_session().get_service_model("ecs").operation_model("RegisterTaskDefinition")
    validate_parameters(params, shape.input_shape)  # raises ParamValidationError listing every problem
    (container,) = params["containerDefinitions"]
    assert container["stopTimeout"] == STOP_TIMEOUT_S
    assert container["healthCheck"]["command"] == ["CMD", "/app/docker/entrypoint.sh", "ai-worker", "check"]
    assert container["linuxParameters"]["initProcessEnabled"] is True
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["AI_WORKER_BACKEND"] == "aws"
    assert env["AI_WORKER_DRAIN_TIMEOUT_S"] == str(int(Settings().drain_timeout_s))
    assert float(env["AI_WORKER_DRAIN_TIMEOUT_S"]) < STOP_TIMEOUT_S


def test_cpu_runs_on_fargate_in_both_architectures(template: dict[str, Any], resources: dict[str, Any]) -> None:
    cpu = resources["CpuTaskDefinition"]
    assert cpu["RequiresCompatibilities"] == ["FARGATE"]
    assert cpu["RuntimePlatform"]["CpuArchitecture"] == {"Ref": "CpuArchitecture"}
    assert set(template["Parameters"]["CpuArchitecture"]["AllowedValues"]) == {"ARM64", "X86_64"}
    assert resources["CpuService"]["LaunchType"] == "FARGATE"


def test_gpu_runs_on_ec2_gpu_capacity(resources: dict[str, Any]) -> None:
    gpu = resources["GpuTaskDefinition"]
    assert gpu["RequiresCompatibilities"] == ["EC2"]
    assert gpu["RuntimePlatform"]["CpuArchitecture"] == "X86_64"
    assert gpu["ContainerDefinitions"][0]["ResourceRequirements"] == [{"Type": "GPU", "Value": "1"}]
    strategy = resources["GpuService"]["CapacityProviderStrategy"]
    assert strategy == [{"CapacityProvider": {"Ref": "GpuCapacityProvider"}, "Weight": 1}]
    assert resources["GpuAutoScalingGroup"]["MinSize"] == "0"  # no GPU instance while the queue is empty
    assert resources["GpuCapacityProvider"]["AutoScalingGroupProvider"]["ManagedScaling"]["Status"] == "ENABLED"


def _metric_ids(metrics: list[dict[str, Any]], name: str) -> dict[str, str]:
    """Id -> queue (or service) of every metric with this MetricName."""
    found = {}
    for m in metrics:
        stat = m.get("MetricStat")
        if stat and stat["Metric"]["MetricName"] == name:
            dims = {d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]}
            target = dims.get("QueueName") or dims["ServiceName"]
            found[m["Id"]] = target["Fn::GetAtt"][0]
    return found


@pytest.mark.parametrize(
    ("policy", "tiers", "service"),
    [("CpuBacklogPolicy", ("lite", "basic"), "CpuService"), ("GpuBacklogPolicy", ("premium",), "GpuService")],
)
def test_target_tracking_on_backlog_per_task(
    resources: dict[str, Any], policy: str, tiers: tuple, service: str
) -> None:
    config = resources[policy]["TargetTrackingScalingPolicyConfiguration"]
    metrics = config["CustomizedMetricSpecification"]["Metrics"]
    (returned,) = [m for m in metrics if m["ReturnData"]]
    visible = _metric_ids(metrics, "ApproximateNumberOfMessagesVisible")
    inflight = _metric_ids(metrics, "ApproximateNumberOfMessagesNotVisible")
    tasks = _metric_ids(metrics, "RunningTaskCount")
    queues = sorted(TIER_QUEUE[t] for t in tiers)
    assert sorted(visible.values()) == sorted(inflight.values()) == queues
    assert list(tasks.values()) == [service]
    numerator, denominator = returned["Expression"].rsplit("/", 1)
    assert denominator.strip() == next(iter(tasks))
    assert sorted(numerator.strip(" ()").replace(" ", "").split("+")) == sorted([*visible, *inflight])


def test_gpu_scales_to_zero_and_wakes_on_backlog(resources: dict[str, Any]) -> None:
    assert resources["GpuScalableTarget"]["MinCapacity"] == 0
    assert resources["GpuService"]["DesiredCount"] == 0
    assert "DisableScaleIn" not in resources["GpuBacklogPolicy"]["TargetTrackingScalingPolicyConfiguration"]
    alarm = resources["GpuWakeAlarm"]
    assert alarm["AlarmActions"] == [{"Ref": "GpuWakePolicy"}]
    (expression,) = [m["Expression"] for m in alarm["Metrics"] if m["ReturnData"]]
    tasks = next(iter(_metric_ids(alarm["Metrics"], "RunningTaskCount")))
    assert expression.startswith(f"IF(FILL({tasks}, 0) < 1,")  # only when nothing runs: no fight with tracking
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" and alarm["Threshold"] == 1
    step = resources["GpuWakePolicy"]["StepScalingPolicyConfiguration"]
    assert step["AdjustmentType"] == "ExactCapacity"
    assert step["StepAdjustments"] == [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]


def test_container_insights_on_for_running_task_count(resources: dict[str, Any]) -> None:
    assert {"Name": "containerInsights", "Value": "enabled"} in resources["Cluster"]["ClusterSettings"]
