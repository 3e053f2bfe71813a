"""hoist._compat's version branches that this machine's transformers (4.46) does not
take, run against their data: the renames of transformers 4.52+ and 5 for Qwen2-VL,
applied to the reference checkpoint's names.

The rules below are the ones those versions declare (Qwen2VLForConditionalGeneration.
_checkpoint_conversion_mapping from 4.52; 5 hands the same pairs out as WeightRenaming
entries of conversion_mapping.get_model_conversion_mapping()). What is tested is how
_compat applies them, not transformers.

Run from python/:  ../.venv/bin/python -m unittest tests.test_compat -v
"""

import json
import os
import sys
import types
import unittest
from unittest import mock

from . import tiny_qwen2vl as tq

try:
    from packaging.version import Version

    from hoist import _compat
except ImportError:
    _compat = None

QWEN2_VL_MAPPING = {
    "^visual": "model.visual",
    r"^model(?!\.(language_model|visual))": "model.language_model",
}


def checkpoint_names():
    with open(os.path.join(tq.MODEL, "model.safetensors.index.json")) as f:
        return sorted(json.load(f)["weight_map"])


def expected(name):
    """The name transformers >= 4.52 gives a Qwen2-VL checkpoint tensor."""
    if name.startswith("visual."):
        return "model." + name
    if name.startswith("model."):
        return "model.language_model." + name[len("model."):]
    return name


class FakeModel:
    _checkpoint_conversion_mapping = QWEN2_VL_MAPPING

    class config:
        model_type = "qwen2_vl"


@unittest.skipUnless(_compat is not None, "needs transformers and accelerate")
class RenamerTest(unittest.TestCase):
    def test_4_46_keeps_qwen2_vl_names(self):
        with mock.patch.object(_compat, "TRANSFORMERS", Version("4.46.3")):
            rename = _compat.KeyRenamer(FakeModel())
        for name in checkpoint_names():
            self.assertEqual(rename(name), name)

    def test_4_46_legacy_fixes(self):
        with mock.patch.object(_compat, "TRANSFORMERS", Version("4.46.3")):
            rename = _compat.KeyRenamer(FakeModel())
        self.assertEqual(rename("encoder.LayerNorm.gamma"), "encoder.LayerNorm.weight")
        self.assertEqual(rename("encoder.LayerNorm.beta"), "encoder.LayerNorm.bias")

    def test_4_52_class_mapping(self):
        with mock.patch.object(_compat, "TRANSFORMERS", Version("4.52.0")):
            rename = _compat.KeyRenamer(FakeModel())
        for name in checkpoint_names():
            self.assertEqual(rename(name), expected(name), name)
        # Names already in the new form are left alone (the lookahead).
        self.assertEqual(rename("model.language_model.norm.weight"),
                         "model.language_model.norm.weight")
        self.assertEqual(rename("model.visual.merger.ln_q.weight"),
                         "model.visual.merger.ln_q.weight")

    def test_5_conversion_mapping(self):
        def transform(kind, source, target):
            return type(kind, (), {"source_patterns": [source], "target_patterns": [target]})()

        fake = types.ModuleType("transformers.conversion_mapping")
        fake.get_model_conversion_mapping = lambda model: (
            [transform("WeightRenaming", k, v) for k, v in QWEN2_VL_MAPPING.items()] +
            [transform("WeightRenaming", "LayerNorm.gamma", "LayerNorm.weight"),
             transform("WeightConverter", "mlp.experts.*.gate_proj.weight",
                       "mlp.experts.gate_up_proj")])
        with mock.patch.object(_compat, "TRANSFORMERS", Version("5.2.0")), \
                mock.patch.dict(sys.modules, {"transformers.conversion_mapping": fake}):
            rename = _compat.KeyRenamer(FakeModel())
        for name in checkpoint_names():
            self.assertEqual(rename(name), expected(name), name)
            self.assertFalse(rename.needs_conversion(name), name)
        self.assertTrue(rename.needs_conversion("model.layers.3.mlp.experts.12.gate_proj.weight"))
        # 5's legacy rename is the LayerNorm one only; 4.46's "any beta" rule is gone.
        self.assertEqual(rename("x.beta_proj.weight"), "x.beta_proj.weight")
        # 5 chains every renaming that matches; 4.52 stops at the first.
        self.assertEqual(rename("visual.blocks.0.LayerNorm.gamma"),
                         "model.visual.blocks.0.LayerNorm.weight")


if __name__ == "__main__":
    unittest.main()
