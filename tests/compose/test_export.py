"""Exports carry their tokenizer and name the plugins their primitives come from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from cambrian import CambrianError
from cambrian.architectures import build_model, reference_spec, register_primitive, unregister_primitive
from cambrian.plugins.domains.compose.export import write_export

TEXTS = ["Hello world", "héllo Ā ü 日本 🙂", "  two  spaces\n\ttab", "<0x00> looks like a byte token"]

PLUGIN = '''
import torch.nn as nn
from cambrian import hookimpl
from cambrian.architectures import Cache, Flops, Primitive


class Scale(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * self.gain


class Gain(Primitive):
    name, kind, options = "gainplug-gain", "channel", ()

    def params(self, o, d):
        return d

    def flops(self, o, d, seq_len):
        return Flops(0, other=d)

    def cache(self, o, d):
        return Cache()

    def build(self, o, spec, layer_index):
        return Scale(spec.d_model)


@hookimpl
def cambrian_primitives():
    return [Gain]
'''


def _plugin_site(root):
    """A pip-installed plugin as importlib.metadata sees one: a package plus its dist-info."""
    site = root / "site"
    (site / "gainplug").mkdir(parents=True)
    (site / "gainplug" / "__init__.py").write_text("import torch\n" + PLUGIN)
    info = site / "gainplug-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gainplug\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text("[cambrian]\ngainplug = gainplug\n")
    return site


def _python(code: str, cwd, pythonpath=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env, stdin=subprocess.DEVNULL)


def test_the_saved_tokenizer_is_the_byte_tokenizer(tmp_path):
    from transformers import AutoTokenizer

    from cambrian.scaling.data import ByteTokenizer

    model = build_model(reference_spec("llama", d_model=16, n_layers=1, max_seq_len=32), seed=0)
    out = write_export(model, tmp_path / "hf")
    tok = AutoTokenizer.from_pretrained(out, trust_remote_code=True)
    data = ByteTokenizer()
    assert len(tok) == 256 and tok.eos_token_id == 0 == tok.pad_token_id
    for text in TEXTS:
        ids = tok(text)["input_ids"]
        assert ids == list(data.encode(text)), text
        assert tok.decode(ids) == text
    config = json.loads((out / "config.json").read_text())
    assert config["cambrian_requires"] == [] and config["eos_token_id"] == 0


def test_plugin_primitive_exports_and_loads_through_its_entry_point(tmp_path):
    site = _plugin_site(tmp_path)
    out = tmp_path / "hf"
    export = _python(f"""
        import torch
        from cambrian.architectures import ArchSpec, build_model
        from cambrian.plugins.domains.compose.export import write_export
        spec = ArchSpec.from_dict({{"d_model": 16, "max_seq_len": 32, "layers": ["attention", "gainplug-gain"]}})
        model = build_model(spec, seed=1).eval()
        write_export(model, {str(out)!r})
        with torch.no_grad():
            torch.save(model(torch.arange(8).view(1, 8)), {str(tmp_path / 'expected.pt')!r})
    """, tmp_path, site)
    assert export.returncode == 0, export.stderr[-2000:]
    requires = json.loads((out / "config.json").read_text())["cambrian_requires"]
    assert requires == [{"primitive": "gainplug-gain", "plugin": "gainplug", "distribution": "gainplug",
                         "version": "0.3"}]
    load = """
        import torch
        from transformers import AutoModelForCausalLM
        m = AutoModelForCausalLM.from_pretrained(%r, trust_remote_code=True).eval()
        with torch.no_grad():
            assert torch.equal(m(torch.arange(8).view(1, 8)).logits, torch.load(%r))
        print("loaded")
    """ % (str(out), str(tmp_path / "expected.pt"))
    here = _python(load, tmp_path, site)  # the plugin installed: its entry point provides the primitive
    assert here.returncode == 0 and "loaded" in here.stdout, here.stderr[-2000:]
    elsewhere = _python(load, tmp_path)  # not installed: one line says what to install
    assert elsewhere.returncode != 0
    assert "needs primitive(s) that no installed plugin offers: gainplug-gain " \
           "(pip install 'gainplug==0.3')" in elsewhere.stderr


def test_primitive_without_a_distribution_is_refused_before_writing(tmp_path):
    from cambrian.architectures import ArchSpec, Cache, Flops, Primitive

    class Ident(Primitive):
        name, kind, options = "runtime-ident", "channel", ()

        def params(self, o, d):
            return 0

        def flops(self, o, d, seq_len):
            return Flops(0)

        def cache(self, o, d):
            return Cache()

        def build(self, o, spec, layer_index):
            return torch.nn.Identity()

    register_primitive(Ident)
    try:
        model = build_model(ArchSpec.from_dict({"d_model": 16, "layers": ["attention", "runtime-ident"]}))
        with pytest.raises(CambrianError, match="cannot export: primitive 'runtime-ident' is registered "
                                                "at run time, not by an installed plugin") as info:
            write_export(model, tmp_path / "hf")
    finally:
        unregister_primitive("runtime-ident")
    assert "\n" not in str(info.value) and not (tmp_path / "hf").exists()
