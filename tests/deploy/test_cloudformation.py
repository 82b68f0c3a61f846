"""deploy/ai-worker.yaml: cfn-lint clean, the queue contract of ai_worker.admin, least-privilege roles, ECS task
definitions that botocore's RegisterTaskDefinition shape accepts, the secrets each worker's job types need,
backlog-per-task scaling with a waker for every service that may rest at zero, and GPU capacity that never
terminates a busy instance."""

from __future__ import annotations

import re
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import yaml
from botocore.validate import validate_parameters

from ai_worker.admin import MAX_RECEIVE_COUNT, VISIBILITY_BY_TIER
from ai_worker.config import Settings
from ai_worker.jobs import ALLOWED_JOB_TYPES
from ai_worker.tiers import WORKER_TIERS, Tier

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
    assert env["AI_WORKER_KIND"] == name[:3].lower() and "AI_WORKER_TIER" not in env
    assert env["AI_WORKER_DRAIN_TIMEOUT_S"] == str(int(Settings().drain_timeout_s))
    assert float(env["AI_WORKER_DRAIN_TIMEOUT_S"]) < STOP_TIMEOUT_S


def test_cpu_runs_on_fargate_in_both_architectures(template: dict[str, Any], resources: dict[str, Any]) -> None:
    cpu = resources["CpuTaskDefinition"]
    assert cpu["RequiresCompatibilities"] == ["FARGATE"]
    assert cpu["RuntimePlatform"]["CpuArchitecture"] == {"Ref": "CpuArchitecture"}
    assert set(template["Parameters"]["CpuArchitecture"]["AllowedValues"]) == {"ARM64", "X86_64"}
    # The default is what `scripts/build.sh cpu --push` pushes (tests/deploy/test_build_scripts.py checks that side).
    assert template["Parameters"]["CpuArchitecture"]["Default"] == "X86_64"
    assert resources["CpuService"]["LaunchType"] == "FARGATE"


# What each job type needs from outside AWS, as the environment variable the code reads and the stack parameter that
# names its Secrets Manager secret.
SECRET_OF_JOB = {
    "ocr": ("AI_WORKER_GOOGLE_CREDENTIALS_JSON", "GoogleCredentialsSecretArn"),
    "problem_generation": ("OPENAI_API_KEY", "OpenAiApiKeySecretArn"),
}


def test_the_secret_variables_are_the_ones_the_code_reads() -> None:
    assert Settings.from_env({"AI_WORKER_GOOGLE_CREDENTIALS_JSON": "{}"}).ocr.credentials_json == "{}"
    source = (REPO / "ai_worker" / "jobs" / "problem_generation.py").read_text()
    assert 'os.environ.get("OPENAI_API_KEY"' in source


@pytest.mark.parametrize(("definition", "kind"), [("CpuTaskDefinition", "cpu"), ("GpuTaskDefinition", "gpu")])
def test_each_worker_gets_the_secrets_of_the_jobs_it_runs(
    template: dict[str, Any], resources: dict[str, Any], definition: str, kind: str
) -> None:
    runs = set().union(*(ALLOWED_JOB_TYPES[tier] for tier in WORKER_TIERS[kind]))  # type: ignore[index]
    expected = {SECRET_OF_JOB[job] for job in runs if job in SECRET_OF_JOB}
    (container,) = resources[definition]["ContainerDefinitions"]
    secrets = {(s["Name"], s["ValueFrom"]["Ref"]) for s in container.get("Secrets", [])}
    assert secrets == expected
    env_names = {e["Name"] for e in container["Environment"]}
    assert not env_names & {name for name, _ in SECRET_OF_JOB.values()}, "a secret passed as plain environment"
    for _, parameter in expected:
        pattern = template["Parameters"][parameter]["AllowedPattern"]
        assert re.fullmatch(pattern, "arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:ai/openai-AbCdEf")
        assert not re.fullmatch(pattern, "*")


def test_execution_role_reads_exactly_the_named_secrets(resources: dict[str, Any]) -> None:
    named = {
        s["ValueFrom"]["Ref"]
        for definition in ("CpuTaskDefinition", "GpuTaskDefinition")
        for s in resources[definition]["ContainerDefinitions"][0].get("Secrets", [])
    }
    statements = [s for p in resources["ExecutionRole"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
    (read,) = [s for s in statements if "secretsmanager:GetSecretValue" in _list(s["Action"])]
    assert _list(read["Action"]) == ["secretsmanager:GetSecretValue"] and read["Effect"] == "Allow"
    assert sorted(r["Ref"] for r in _list(read["Resource"])) == sorted(named)
    # The task roles (what the code itself can call) read no secret.
    for role in ("CpuTaskRole", "GpuTaskRole"):
        actions = [a for s in _statements(resources, role) for a in _list(s["Action"])]
        assert not any(a.startswith("secretsmanager:") for a in actions), role


def test_gpu_runs_on_ec2_gpu_capacity(resources: dict[str, Any]) -> None:
    gpu = resources["GpuTaskDefinition"]
    assert gpu["RequiresCompatibilities"] == ["EC2"]
    assert gpu["RuntimePlatform"]["CpuArchitecture"] == "X86_64"
    assert gpu["ContainerDefinitions"][0]["ResourceRequirements"] == [{"Type": "GPU", "Value": "1"}]
    strategy = resources["GpuService"]["CapacityProviderStrategy"]
    assert strategy == [{"CapacityProvider": {"Ref": "GpuCapacityProvider"}, "Weight": 1}]
    assert resources["GpuAutoScalingGroup"]["MinSize"] == "0"  # no GPU instance while the queue is empty
    assert resources["GpuCapacityProvider"]["AutoScalingGroupProvider"]["ManagedScaling"]["Status"] == "ENABLED"


def test_gpu_capacity_never_terminates_a_busy_instance(resources: dict[str, Any]) -> None:
    """Managed termination protection: scale-in picks only instances with no task; it requires new instances to
    start protected, and the capacity provider lifts the protection when an instance is idle."""
    provider = resources["GpuCapacityProvider"]["AutoScalingGroupProvider"]
    assert provider["ManagedTerminationProtection"] == "ENABLED"
    assert resources["GpuAutoScalingGroup"]["NewInstancesProtectedFromScaleIn"] is True
    assert provider["ManagedDraining"] == "ENABLED"


def _gpu_env_budget_gib() -> float:
    spec = tomllib.loads((REPO / "pixi.toml").read_text())["tool"]["ai-worker"]["size-budgets"]["gpu-prod"]
    match = re.fullmatch(r"(\d+(?:\.\d+)?)GiB", spec)
    assert match, spec
    return float(match.group(1))


def test_gpu_root_volume_holds_the_image(template: dict[str, Any], resources: dict[str, Any]) -> None:
    """The AMI's ~30 GiB, plus the image pulled: compressed layers and their extraction side by side, conda
    environments unpacking to about 2.5x their download size: budget x (1 + 2.5), rounded up to 4x."""
    data = resources["GpuLaunchTemplate"]["LaunchTemplateData"]
    (root,) = data["BlockDeviceMappings"]
    assert root["DeviceName"] == "/dev/xvda"  # the root device of the Amazon Linux 2023 ECS AMIs
    assert root["Ebs"]["VolumeSize"] == {"Ref": "GpuRootVolumeGiB"}
    assert root["Ebs"]["VolumeType"] == "gp3" and root["Ebs"]["Encrypted"] is True
    parameter = template["Parameters"]["GpuRootVolumeGiB"]
    assert parameter["MinValue"] >= 30 + 4 * _gpu_env_budget_gib()
    assert parameter["Default"] >= parameter["MinValue"]


def test_gpu_tasks_cannot_reach_the_instance_metadata_service(resources: dict[str, Any]) -> None:
    user_data = resources["GpuLaunchTemplate"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"]
    config = dict(
        line.split("=", 1) for line in user_data.splitlines() if re.fullmatch(r"ECS_[A-Z_]+=\S+", line.strip())
    )
    assert config == {"ECS_CLUSTER": "${Cluster}", "ECS_AWSVPC_BLOCK_IMDS": "true"}
    assert not re.search(r"[^>]> /etc/ecs/ecs.config", user_data)  # appended to, never overwritten
    assert resources["GpuTaskDefinition"]["NetworkMode"] == "awsvpc"  # the mode the setting applies to
    assert resources["GpuLaunchTemplate"]["LaunchTemplateData"]["MetadataOptions"]["HttpTokens"] == "required"


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


def _service_of(target: dict[str, Any]) -> str:
    """The service resource an ECS scalable target scales (ResourceId `service/${Cluster}/${XService.Name}`)."""
    match = re.fullmatch(r"service/\$\{Cluster\}/\$\{(\w+)\.Name\}", target["ResourceId"]["Fn::Sub"])
    assert match, target["ResourceId"]
    return match.group(1)


def test_autoscaled_services_leave_their_desired_count_to_auto_scaling(template: dict[str, Any]) -> None:
    """A DesiredCount in the template is re-applied by every stack update, resetting what auto scaling chose."""
    scaled = [
        _service_of(r["Properties"])
        for r in template["Resources"].values()
        if r["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"
    ]
    assert sorted(scaled) == ["CpuService", "GpuService"]
    for service in scaled:
        assert "DesiredCount" not in template["Resources"][service]["Properties"], service


def _min_capacity_can_be_zero(template: dict[str, Any], target: dict[str, Any]) -> bool:
    minimum = target["MinCapacity"]
    if isinstance(minimum, dict):
        return bool(template["Parameters"][minimum["Ref"]].get("MinValue", 0) == 0)
    return bool(minimum == 0)


@pytest.mark.parametrize(("kind", "tiers"), [("Cpu", ("lite", "basic")), ("Gpu", ("premium",))])
def test_a_service_that_may_rest_at_zero_wakes_on_backlog(
    template: dict[str, Any], resources: dict[str, Any], kind: str, tiers: tuple[Tier, ...]
) -> None:
    """Target tracking cannot leave zero tasks (backlog / 0 is no data point): every service whose minimum may be
    zero has an alarm on its queues' backlog, armed only while no task runs, that sets it to one task."""
    target = resources[f"{kind}ScalableTarget"]
    if not _min_capacity_can_be_zero(template, target):
        pytest.skip(f"{kind}Service keeps at least one task")
    assert "DisableScaleIn" not in resources[f"{kind}BacklogPolicy"]["TargetTrackingScalingPolicyConfiguration"]
    alarm = resources[f"{kind}WakeAlarm"]
    assert alarm["AlarmActions"] == [{"Ref": f"{kind}WakePolicy"}]
    (expression,) = [m["Expression"] for m in alarm["Metrics"] if m["ReturnData"]]
    tasks = _metric_ids(alarm["Metrics"], "RunningTaskCount")
    assert list(tasks.values()) == [f"{kind}Service"]
    # The backlog counts only when nothing runs: no fight with target tracking.
    match = re.fullmatch(rf"IF\(FILL\({next(iter(tasks))}, 0\) < 1, (.+), 0\)", expression)
    assert match, expression
    visible = _metric_ids(alarm["Metrics"], "ApproximateNumberOfMessagesVisible")
    inflight = _metric_ids(alarm["Metrics"], "ApproximateNumberOfMessagesNotVisible")
    queues = sorted(TIER_QUEUE[t] for t in tiers)
    assert sorted(visible.values()) == sorted(inflight.values()) == queues
    assert sorted(match.group(1).replace(" ", "").split("+")) == sorted([*visible, *inflight])
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" and alarm["Threshold"] == 1
    step = resources[f"{kind}WakePolicy"]["StepScalingPolicyConfiguration"]
    assert resources[f"{kind}WakePolicy"]["ScalingTargetId"] == {"Ref": f"{kind}ScalableTarget"}
    assert step["AdjustmentType"] == "ExactCapacity"
    assert step["StepAdjustments"] == [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]


def test_gpu_rests_at_zero_and_cpu_may(template: dict[str, Any], resources: dict[str, Any]) -> None:
    assert resources["GpuScalableTarget"]["MinCapacity"] == 0
    assert resources["CpuScalableTarget"]["MinCapacity"] == {"Ref": "CpuMinTasks"}
    assert template["Parameters"]["CpuMinTasks"]["MinValue"] == 0


def test_container_insights_on_for_running_task_count(resources: dict[str, Any]) -> None:
    assert {"Name": "containerInsights", "Value": "enabled"} in resources["Cluster"]["ClusterSettings"]
