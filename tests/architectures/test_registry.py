"""The primitive registry, the cambrian_primitives hook, and third-party primitives in specs."""

import torch
import torch.nn as nn

import pytest
from cambrian import hookimpl
from cambrian.architectures import (ArchSpec, Cache, Flops, Option, Primitive, SpecError,
                                    build_model, count, get_primitive, primitive_names,
                                    register_primitive, unregister_primitive)
from cambrian.architectures.primitives import BUILTIN_PRIMITIVES


class Scale(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * self.gain


class Gain(Primitive):
    """A third-party channel mixer: one learned gain per channel."""

    name = "gain-test"
    kind = "channel"
    options = (Option("init", float, 1.0, "unused by the formulas"),)

    def params(self, o, d):
        return d

    def flops(self, o, d, seq_len):
        return Flops(0, other=d)

    def cache(self, o, d):
        return Cache()

    def build(self, o, spec, layer_index):
        return Scale(spec.d_model)


class GainPlugin:
    @hookimpl
    def cambrian_primitives(self):
        return [Gain]


def test_builtin_plugin_offers_every_builtin(fresh_pm):
    names = fresh_pm.names("primitive")
    assert {cls.name for cls in BUILTIN_PRIMITIVES} <= set(names)
    assert fresh_pm.registry()["primitive"]["mamba"].plugin == "primitives.builtin"


def test_third_party_primitive_through_the_hook_is_usable_in_specs(fresh_pm):
    assert "gain-test" not in primitive_names()
    fresh_pm.register(GainPlugin(), "gain-plugin")
    try:
        # one registry: the plugin's primitive is usable in specs at once, with no sync step
        assert "gain-test" in primitive_names() and "attention" in primitive_names()
        assert isinstance(get_primitive("gain-test"), Gain)
        spec = ArchSpec.from_dict({"d_model": 16, "layers": ["attention", "gain-test"]})
        model = build_model(spec)
        assert model(torch.randint(0, 256, (1, 5))).shape == (1, 5, 256)
        assert count(spec).params == sum(p.numel() for p in model.parameters())
        with pytest.raises(SpecError, match="option 'init' must be float"):
            ArchSpec.from_dict({"d_model": 16, "layers": [
                {"primitive": "gain-test", "options": {"init": "one"}}]})
    finally:
        fresh_pm.unregister("gain-plugin")
    assert "gain-test" not in primitive_names()  # gone with its plugin
    with pytest.raises(SpecError, match="unknown primitive 'gain-test'"):
        get_primitive("gain-test")


def test_register_and_get():
    register_primitive(Gain)
    try:
        assert isinstance(get_primitive("gain-test"), Gain)

        class Other(Gain):
            pass

        with pytest.raises(SpecError, match="already registered"):
            register_primitive(Other)
        register_primitive(Other, replace=True)
        assert isinstance(get_primitive("gain-test"), Other)
    finally:
        unregister_primitive("gain-test")
    with pytest.raises(SpecError, match="unknown primitive 'gain-test'"):
        get_primitive("gain-test")

    class NotOne:
        name = "not-a-primitive"

    with pytest.raises(SpecError, match="must subclass"):
        register_primitive(NotOne)
