"""ray_cluster.yaml passes the checks `ray up` runs before it contacts a cloud (docs/architecture.md §5.5):
the JSON schema that ships with Ray, then Ray's own `prepare_config` + `validate_config`. No cloud calls,
no credentials; the on-prem variant in the file's comments is checked too."""

import json
import os
from pathlib import Path

import jsonschema
import pytest
import ray
import ray.autoscaler
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config  # private: pinned Ray below

CLUSTER_YAML = Path(__file__).resolve().parents[1] / "ray_cluster.yaml"


def problems(config: dict) -> list[str]:
    schema_path = os.path.join(os.path.dirname(ray.autoscaler.__file__), "ray-schema.json")
    schema = json.loads(Path(schema_path).read_text())
    found = [f"{'/'.join(map(str, e.path)) or '<root>'}: {e.message}"
             for e in jsonschema.Draft7Validator(schema).iter_errors(config)]
    try:
        validate_config(prepare_config(config))
    except Exception as error:  # noqa: BLE001  (Ray's cli_logger.abort raises click exceptions)
        found.append(f"ray: {error}")
    return found


def on_prem_variant() -> dict:
    lines = CLUSTER_YAML.read_text().splitlines()
    start, end = lines.index("# on-prem:") + 1, lines.index("# end on-prem")
    return yaml.safe_load("\n".join(line[4:] for line in lines[start:end]))


def test_ray_version_is_the_pinned_one():
    assert ray.__version__.startswith("2.60."), "the private validator import is pinned to Ray 2.60"


def test_cluster_yaml_is_valid():
    config = yaml.safe_load(CLUSTER_YAML.read_text())
    assert problems(config) == []
    assert config["docker"]["image"].startswith(f"rayproject/ray:{ray.__version__}")
    workers = config["available_node_types"]["gpu_worker"]
    assert workers["resources"]["GPU"] >= 1 and workers["min_workers"] >= 1
    head_commands = " ".join(config["head_start_ray_commands"])
    assert "mlflow server" in head_commands and "--host 127.0.0.1" in head_commands
    assert "--dashboard-host=127.0.0.1" in head_commands
    assert any("pip install" in c and "-e ." in c for c in config["setup_commands"])


def test_on_prem_variant_in_the_comments_is_valid():
    config = on_prem_variant()
    assert config["provider"]["type"] == "local" and "available_node_types" not in config
    assert problems(config) == []


@pytest.mark.parametrize("mistake", ["setup_comands", "min_worker"])
def test_the_validator_catches_misspelled_keys(mistake):
    config = yaml.safe_load(CLUSTER_YAML.read_text())
    if mistake == "setup_comands":
        config[mistake] = config.pop("setup_commands")
    else:
        config["available_node_types"]["gpu_worker"][mistake] = 1
    assert any("Additional properties" in p for p in problems(config))
