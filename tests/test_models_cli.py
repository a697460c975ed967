from click.testing import CliRunner

from bench.cli.models import models
from bench.models import MODELS


def test_models_lists_every_model_with_dim_and_preprocessing():
    result = CliRunner().invoke(models, [])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()[2:]}
    assert sorted(lines) == MODELS.names()
    assert "256" in lines["resnet18-dream"] and "celeba" in lines["resnet18-dream"]
    assert "512" in lines["iresnet50"] and "arcface112" in lines["iresnet50"]
    assert "from file" in lines["onnx"]
    assert "gate='code'" in lines["iresnet18-dream"]


def test_models_names_only():
    result = CliRunner().invoke(models, ["--names"])
    assert result.output.split() == MODELS.names()
