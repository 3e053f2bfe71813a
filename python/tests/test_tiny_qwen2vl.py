"""The tiny Qwen2-VL helper against the installed transformers: it loads with no
missing or unexpected keys, runs, and its input reaches the vision tower.

Run from python/:  ../.venv/bin/python -m unittest tests.test_tiny_qwen2vl -v
"""

import json
import os
import shutil
import unittest

import torch

from . import tiny_qwen2vl as tq

try:
    import transformers
    from transformers import Qwen2VLForConditionalGeneration
except ImportError:
    transformers = None


class FlatConfigTest(unittest.TestCase):
    def test_flattens_text_and_remaps_vision_ids(self):
        with open(os.path.join(tq.MODEL, "config.json")) as f:
            nested = json.load(f)
        flat = tq.flat_config(nested)
        self.assertEqual(flat["hidden_size"], nested["text_config"]["hidden_size"])
        self.assertEqual(flat["num_hidden_layers"], 3)
        self.assertEqual(flat["vocab_size"], 512)
        self.assertEqual(flat["rope_scaling"], {"type": "mrope", "mrope_section": [2, 3, 3]})
        self.assertEqual(flat["rope_theta"], 1000000.0)
        self.assertEqual(flat["vision_config"]["embed_dim"], 32)
        self.assertEqual(flat["torch_dtype"], "bfloat16")
        for key, value in tq.TOKEN_IDS.items():
            self.assertLess(value, flat["vocab_size"], key)
        self.assertNotIn("text_config", flat)

    def test_nested_form_only_remaps_ids(self):
        with open(os.path.join(tq.MODEL, "config.json")) as f:
            nested = json.load(f)
        out = tq.nested_config(nested, tie_word_embeddings=True)
        self.assertEqual(out["text_config"]["hidden_size"], 64)
        self.assertTrue(out["tie_word_embeddings"])
        self.assertTrue(out["text_config"]["tie_word_embeddings"])
        for key, value in tq.TOKEN_IDS.items():
            self.assertEqual(out[key], value)
        self.assertNotEqual(nested["image_token_id"], out["image_token_id"])  # a copy


@unittest.skipUnless(transformers is not None, "needs transformers")
class TinyModelTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tq.make_model_dir()
        cls.model, cls.info = Qwen2VLForConditionalGeneration.from_pretrained(
            cls.dir, torch_dtype=torch.bfloat16, output_loading_info=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_loads_every_tensor(self):
        self.assertEqual(self.info["missing_keys"], [])
        self.assertEqual(self.info["unexpected_keys"], [])
        self.assertEqual(self.info["mismatched_keys"], [])
        self.assertEqual(self.model.config.vocab_size, 512)

    def test_forward_runs_the_vision_tower(self):
        calls = []
        hooks = [m.register_forward_hook(lambda mod, i, o, n=name: calls.append(n))
                 for name, m in self.model.named_modules()
                 if name.endswith(("blocks.0", "blocks.1", "merger"))]
        try:
            logits = tq.forward_logits(self.model, tq.model_inputs())
        finally:
            for h in hooks:
                h.remove()
        self.assertEqual(len(calls), 3, calls)
        self.assertEqual(tuple(logits.shape), (1, 17, 512))
        self.assertTrue(torch.isfinite(logits.float()).all())

    def test_pixels_change_the_logits(self):
        a = tq.forward_logits(self.model, tq.model_inputs())
        b = tq.forward_logits(self.model, tq.model_inputs(image_scale=2.0))
        self.assertTrue(torch.equal(a, tq.forward_logits(self.model, tq.model_inputs())))
        # Causal: the text before the image cannot see it; the image tokens and
        # everything after can.
        self.assertTrue(torch.equal(a[:, :6], b[:, :6]))
        self.assertFalse(torch.equal(a[:, 6:], b[:, 6:]))


if __name__ == "__main__":
    unittest.main()
