"""hoist.transformers against the real libraries, with each tensor source: hoist's own
loader (the default: hoist's C planner, one load, DLPack) and the safetensors
stand-in the glue was first proven with. The model it fills must give logits equal,
bit for bit, to from_pretrained's on the same input, on cpu and with layers on disk;
its tensors must be the source's tensors (no copies); tied parameters must share
storage; its state_dict must equal the reference dump.

Run from python/:  ../.venv/bin/python -m unittest tests.test_transformers_glue -v
"""

import json
import os
import shutil
import tempfile
import unittest

import torch

from . import tiny_qwen2vl as tq

try:
    import transformers
    from accelerate import init_empty_weights
    from safetensors.torch import load_file, save_file
    from transformers import Qwen2VLForConditionalGeneration as Qwen2VL

    import hoist.transformers as ht
    from hoist.source import safetensors_source
    from hoist.transformers import hoist_source
except ImportError:  # the tests below skip, saying what they need
    transformers = None

BF16 = torch.bfloat16

# A map with layers on cpu and on disk, in every part of the model (the image tower,
# the merger, text layers, the final norm and the head); the execution device is cpu.
# In checkpoint names; mixed(model) gives the model's.
MIXED = {
    "visual.patch_embed": "cpu", "visual.rotary_pos_emb": "cpu", "visual.blocks.0": "disk",
    "visual.blocks.1": "cpu", "visual.merger": "disk", "model.embed_tokens": "cpu",
    "model.layers.0": "cpu", "model.layers.1": "disk", "model.layers.2": "cpu",
    "model.norm": "disk", "model.rotary_emb": "cpu", "lm_head": "disk",
}


def here(model, name):
    """name (a checkpoint-style module or tensor name) as this model names it: the
    same, or where the model nests its parts (transformers >= 4.52) the nested name."""
    known = {n for n, _ in model.named_modules()} | set(model.state_dict(keep_vars=True))
    if name in known:
        return name
    for old, new in (("visual.", "model.visual."), ("model.", "model.language_model.")):
        if name.startswith(old) and new + name[len(old):] in known:
            return new + name[len(old):]
    raise KeyError(name)


def mixed(model):
    return {here(model, k): v for k, v in MIXED.items()}


# Checkpoint names of the reference state_dict dump, which transformers 5 wrote with
# its in-memory names: the renames that undo transformers >= 4.52's load-time
# mapping for Qwen2-VL ("^visual" -> "model.visual", "^model(?!...)" ->
# "model.language_model"), i.e. the names in the safetensors shards.
DUMP_TO_CHECKPOINT = (("model.language_model.", "model."), ("model.visual.", "visual."))


def dump_to_checkpoint(name):
    for old, new in DUMP_TO_CHECKPOINT:
        if name.startswith(old):
            return new + name[len(old):]
    return name


class RecordingSource:
    """A source (hoist's or the stand-in), remembering every tensor it handed out."""

    def __init__(self, make=None):
        self.make = make or safetensors_source
        self.loaded = {}
        self.placements = []

    def __call__(self, path):
        inner = self.make(path)
        recorder = self

        class Recorded:
            def __init__(self):
                self.path = inner.path

            def tensors(self):
                return inner.tensors()

            def load(self, placement, dtypes=None):
                out = inner.load(placement, dtypes)
                recorder.placements.append(dict(placement))
                recorder.loaded.update(out)
                return out

            def close(self):
                inner.close()

        if hasattr(inner, "plan_units"):
            Recorded.plan_units = lambda self, *a, **k: inner.plan_units(*a, **k)
        return Recorded()


def quiet():
    """The libraries' expected warnings (offloaded parameters, the edited checkpoint's
    keys) and progress bars off; the tests check those things themselves."""
    import logging

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    for name in ("accelerate", "hoist"):
        logging.getLogger(name).setLevel(logging.ERROR)


def logits(model, device="cpu", **kw):
    return tq.forward_logits(model, tq.model_inputs(**kw), device).cpu()


class GlueCases:
    """The cases, run once per source (SOURCE)."""

    SOURCE = None

    @classmethod
    def setUpClass(cls):
        quiet()
        cls.tmp = tempfile.mkdtemp(prefix="hoist-glue-")
        cls.dir = tq.make_model_dir(cls.tmp)
        cls.ref = Qwen2VL.from_pretrained(cls.dir, torch_dtype=BF16, device_map={"": "cpu"})
        cls.ref_logits = logits(cls.ref)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def load(self, **kw):
        source = RecordingSource(self.SOURCE)
        kw.setdefault("torch_dtype", BF16)
        model, info = ht.from_pretrained(Qwen2VL, self.dir, source=source,
                                         output_loading_info=True, **kw)
        return model, info, source

    # (a) everything on cpu

    def test_cpu_logits_equal_from_pretrained(self):
        model, info, _ = self.load(device_map={"": "cpu"})
        self.assertEqual(info["missing_keys"], [])
        self.assertEqual(info["unexpected_keys"], [])
        self.assertTrue(torch.equal(logits(model), self.ref_logits))
        self.assertTrue(torch.equal(logits(model, image_scale=2.0),
                                    logits(self.ref, image_scale=2.0)))

    def test_tensors_are_the_sources_not_copies(self):
        model, _, source = self.load(device_map={"": "cpu"})
        self.assertEqual(model.hoist_load.copied, [])
        to_module = model.hoist_load.names.to_module
        state = model.state_dict(keep_vars=True)
        self.assertEqual(len(source.loaded), len(state))  # every tensor, each once
        for ckpt, tensor in source.loaded.items():
            mine = state[to_module[ckpt]]
            self.assertEqual(mine.data_ptr(), tensor.data_ptr(), ckpt)
            self.assertEqual(mine.dtype, tensor.dtype, ckpt)
        for name, param in model.named_parameters():
            self.assertIsInstance(param, torch.nn.Parameter, name)
            self.assertEqual(param.requires_grad,
                             self.ref.get_parameter(name).requires_grad, name)

    def test_state_dict_equals_reference_dump(self):
        model, _, _ = self.load(device_map={"": "cpu"})
        mine = model.state_dict()
        ref = self.ref.state_dict()
        self.assertEqual(sorted(mine), sorted(ref))  # from_pretrained's names
        dump = torch.load(tq.STATE_DICT, map_location="cpu")
        self.assertEqual(len(dump), len(mine))
        # The dump's names reach the installed version's names as the checkpoint's
        # do: through the checkpoint names, then the glue's renames.
        to_module = model.hoist_load.names.to_module
        for name, value in dump.items():
            module = to_module[dump_to_checkpoint(name)]
            self.assertEqual(mine[module].dtype, value.dtype, name)
            self.assertTrue(torch.equal(mine[module], value), name)
            self.assertTrue(torch.equal(ref[module], value), name)

    # (b) layers on cpu and on disk

    def test_cpu_and_disk_logits_equal_from_pretrained(self):
        before = sorted(os.listdir(self.dir))
        device_map = mixed(self.ref)
        model, info, source = self.load(device_map=device_map)
        self.assertEqual(info["missing_keys"], [])
        ref = Qwen2VL.from_pretrained(self.dir, torch_dtype=BF16, device_map=device_map)
        got = logits(model)
        self.assertTrue(torch.equal(got, self.ref_logits))
        self.assertTrue(torch.equal(got, logits(ref)))
        self.assertEqual(sorted(os.listdir(self.dir)), before)  # nothing written

        # Disk-placed tensors were never read: they are described, not loaded, and
        # served from the original shards through the offload index.
        disk = [k for k, v in source.loaded.items() if not isinstance(v, torch.Tensor)]
        self.assertTrue(disk)
        index = model.hoist_load.offload_index
        originals = {os.path.realpath(os.path.join(tq.MODEL, f)) for f in os.listdir(tq.MODEL)}
        for name, entry in index.items():
            self.assertIn(os.path.realpath(entry["safetensors_file"]), originals, name)
            self.assertEqual(entry["dtype"], "bfloat16")
        on_disk = here(model, "model.layers.1.mlp.up_proj.weight")
        self.assertEqual(model.get_parameter(on_disk).device.type, "meta")
        on_cpu = here(model, "model.layers.0.mlp.up_proj.weight")
        self.assertEqual(model.get_parameter(on_cpu).device.type, "cpu")
        self.assertIn(on_disk, index)
        self.assertEqual(index[on_disk]["weight_name"], "model.layers.1.mlp.up_proj.weight")
        self.assertEqual(model.hf_device_map, device_map)

    def test_auto_under_a_cpu_budget_spills_to_disk(self):
        budget = 300_000  # of 529,664 bytes
        model, info, _ = self.load(device_map="auto", max_memory={"cpu": budget})
        placed = model.hoist_load.device_map
        self.assertIn("disk", placed.values())
        self.assertIn("cpu", placed.values())
        on_cpu = sum(u.nbytes for u in model.hoist_load.request.units
                     if ht._device_of(u.keys[0], placed) == "cpu")
        self.assertLessEqual(on_cpu, budget)
        self.assertTrue(torch.equal(logits(model), self.ref_logits))

    # dtypes

    def test_default_dtype_converts_in_the_source(self):
        from hoist import _compat

        if _compat.default_dtype() is not None:
            self.skipTest("torch_dtype=None means 'auto' in this transformers")
        ref = Qwen2VL.from_pretrained(self.dir, device_map={"": "cpu"})
        model, _, source = self.load(torch_dtype=None, device_map={"": "cpu"})
        self.assertEqual(model.dtype, torch.float32)
        self.assertEqual(model.hoist_load.copied, [])
        self.assertTrue(all(t.dtype == torch.float32 for t in source.loaded.values()))
        self.assertTrue(torch.equal(logits(model), logits(ref)))

    def test_auto_dtype_is_the_configs(self):
        model, _, _ = self.load(torch_dtype="auto", device_map={"": "cpu"})
        self.assertEqual(model.dtype, BF16)

    # buffers

    def test_non_persistent_buffers_equal_from_pretrained(self):
        model, _, _ = self.load(device_map=mixed(self.ref))
        mine = dict(model.named_buffers())
        ref = dict(self.ref.named_buffers())
        self.assertEqual(sorted(mine), sorted(ref))
        for name in ref:
            self.assertTrue(torch.equal(mine[name], ref[name]), name)
            self.assertEqual(mine[name].dtype, torch.float32, name)

    # the plan request

    def test_plan_request_describes_units_in_order(self):
        model, _, _ = self.load(device_map={"": "cpu"})
        request = model.hoist_load.request
        names = [u.name for u in request.units]
        self.assertEqual(request.order, "inferred")
        # execution order as the forward pass runs it: embeddings, vision, layers, head
        self.assertTrue(names[0].endswith("embed_tokens"), names[0])
        self.assertIn("visual", names[1])
        self.assertEqual(names[-1], "lm_head")
        inputs = tq.model_inputs()
        rope = getattr(self.ref, "get_rope_index", None) or self.ref.model.get_rope_index
        position_ids, _ = rope(inputs["input_ids"], inputs["image_grid_thw"], None,
                               inputs["attention_mask"])
        traced = ht.trace_execution_order(self.ref, **inputs, position_ids=position_ids,
                                          use_cache=False)
        # the units holding tensors (buffer-only rotary modules may sit anywhere)
        holding = [u.name for u in request.units if u.checkpoint_tensors]
        self.assertEqual(holding, [n for n in traced if n in holding])
        no_split = {u.name for u in request.units if u.no_split}
        layer = "model.language_model.layers" if any(
            n.startswith("model.language_model.") for n in names) else "model.layers"
        blocks = "model.visual.blocks" if any(n.startswith("model.visual.") for n in names) \
            else "visual.blocks"
        self.assertEqual(no_split, {f"{layer}.{i}" for i in range(3)} |
                         {f"{blocks}.{i}" for i in range(2)})
        # Prefixes are in checkpoint names, whatever the model calls the unit.
        with open(os.path.join(tq.MODEL, "model.safetensors.index.json")) as f:
            index = json.load(f)
        checkpoint_names = set(index["weight_map"])
        unit = next(u for u in request.units if u.name == f"{layer}.1")
        self.assertEqual(unit.prefixes, ["model.layers.1."])
        covered = set()
        for u in request.units:
            for p in u.prefixes:
                hits = {n for n in checkpoint_names if n == p or (p.endswith(".") and
                                                                  n.startswith(p))}
                self.assertTrue(hits, p)
                self.assertFalse(hits & covered, p)
                covered |= hits
        self.assertEqual(covered, checkpoint_names)
        self.assertEqual(sum(u.nbytes for u in request.units), index["metadata"]["total_size"])
        self.assertEqual(request.tie_groups, [])
        json.loads(request.to_json())

    def test_traced_order_puts_embeddings_before_the_vision_tower(self):
        inputs = tq.model_inputs()
        position_ids, _ = (getattr(self.ref, "get_rope_index", None) or
                           self.ref.model.get_rope_index)(
            inputs["input_ids"], inputs["image_grid_thw"], None, inputs["attention_mask"])
        traced = ht.trace_execution_order(self.ref, **inputs, position_ids=position_ids,
                                          use_cache=False)
        embed = next(n for n in traced if n.endswith("embed_tokens"))
        patch = next(n for n in traced if "patch_embed" in n)
        self.assertLess(traced.index(embed), traced.index(patch))
        self.assertEqual(traced[-1], "lm_head")
        model, _, _ = self.load(device_map={"": "cpu"}, order=traced)
        request = model.hoist_load.request
        self.assertEqual(request.order, "traced")
        self.assertEqual([u.name for u in request.units], traced)
        self.assertTrue(torch.equal(logits(model), self.ref_logits))

    # tied parameters

    def test_tied_embeddings_share_storage_and_load_once(self):
        tied_dir = tq.make_model_dir(self.tmp, tie_word_embeddings=True)
        ref = Qwen2VL.from_pretrained(tied_dir, torch_dtype=BF16, device_map={"": "cpu"})
        self.assertIs(ref.lm_head.weight, ref.get_input_embeddings().weight)
        source = RecordingSource(self.SOURCE)
        # A budget that keeps the tied pair on cpu and sends the text layers to disk
        # (the vision tower and the embeddings take 241,280 bytes). accelerate 0.34.2
        # cannot run tied weights offloaded to disk with the execution device cpu
        # (KeyError 'cpu' in AlignDevicesHook.post_forward; from_pretrained too).
        model = ht.from_pretrained(Qwen2VL, tied_dir, torch_dtype=BF16, source=source,
                                   device_map="auto", max_memory={"cpu": self.TIED_BUDGET})
        self.assertIn("disk", model.hoist_load.device_map.values())
        embed = model.get_input_embeddings().weight
        self.assertIs(model.lm_head.weight, embed)
        self.assertEqual(model.lm_head.weight.data_ptr(), embed.data_ptr())
        request = model.hoist_load.request
        self.assertEqual(len(request.tie_groups), 1)
        group = request.tie_groups[0]
        devices = {ht._device_of(request.units[i].keys[0], model.hoist_load.device_map)
                   for i in group}
        self.assertEqual(len(devices), 1)  # one device for the whole group
        loaded = [k for p in source.placements for k in p]
        self.assertIn("model.embed_tokens.weight", loaded)
        self.assertNotIn("lm_head.weight", loaded)  # the alias is not loaded
        self.assertTrue(torch.equal(logits(model), logits(ref)))

    # missing and unexpected keys

    def _edited_checkpoint(self, drop, add):
        out = tempfile.mkdtemp(prefix="edited-", dir=self.tmp)
        with open(os.path.join(self.dir, "model.safetensors.index.json")) as f:
            index = json.load(f)
        shards = sorted(set(index["weight_map"].values()))
        weight_map = {}
        for i, shard in enumerate(shards):
            tensors = load_file(os.path.join(self.dir, shard))
            for name in drop:
                tensors.pop(name, None)
            if i == len(shards) - 1:
                tensors.update(add)
            save_file(tensors, os.path.join(out, shard), metadata={"format": "pt"})
            weight_map.update({n: shard for n in tensors})
        with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f)
        for name in ("config.json", "generation_config.json"):
            shutil.copy(os.path.join(self.dir, name), out)
        return out

    def test_missing_and_unexpected_keys_as_from_pretrained_reports_them(self):
        edited = self._edited_checkpoint(
            drop=["model.layers.2.mlp.down_proj.weight", "visual.merger.mlp.2.bias"],
            add={"model.layers.0.extra.weight": torch.zeros(2, dtype=BF16),
                 "lm_head.scale": torch.ones(1, dtype=BF16)})
        _, ref_info = Qwen2VL.from_pretrained(edited, torch_dtype=BF16, device_map={"": "cpu"},
                                              output_loading_info=True)
        model, info = ht.from_pretrained(Qwen2VL, edited, torch_dtype=BF16,
                                         device_map=mixed(self.ref), output_loading_info=True,
                                         source=self.SOURCE or safetensors_source)
        self.assertEqual(sorted(info["missing_keys"]), sorted(ref_info["missing_keys"]))
        self.assertEqual(sorted(info["unexpected_keys"]), sorted(ref_info["unexpected_keys"]))
        self.assertEqual(len(info["missing_keys"]), 2)
        self.assertEqual(len(info["unexpected_keys"]), 2)
        self.assertTrue(torch.isfinite(logits(model).float()).all())

    # a model the caller built

    def test_load_into_a_meta_model(self):
        config = transformers.AutoConfig.from_pretrained(self.dir)
        with init_empty_weights():
            model = Qwen2VL._from_config(config, torch_dtype=BF16)
        keys = ht.load_into(model, self.dir, device_map=mixed(self.ref),
                            source=self.SOURCE or safetensors_source)
        self.assertEqual(keys.missing_keys, [])
        self.assertEqual(keys.unexpected_keys, [])
        model.eval()
        self.assertTrue(torch.equal(logits(model), self.ref_logits))

    def test_load_into_refuses_meta_buffers(self):
        config = transformers.AutoConfig.from_pretrained(self.dir)
        with init_empty_weights(include_buffers=True):
            model = Qwen2VL._from_config(config, torch_dtype=BF16)
        if not any(b.device.type == "meta" for b in model.buffers()):
            self.skipTest("this accelerate kept buffers real")
        with self.assertRaisesRegex(ValueError, "meta device"):
            ht.load_into(model, self.dir, device_map={"": "cpu"})

    # paths

    def test_hub_cache_snapshot_resolves_offline(self):
        cache = os.path.join(self.tmp, "hub")
        repo = os.path.join(cache, "models--hoist--tiny-qwen2-vl")
        snapshot = os.path.join(repo, "snapshots", "0123456789abcdef")
        os.makedirs(os.path.join(repo, "refs"))
        shutil.copytree(self.dir, snapshot, symlinks=True)
        with open(os.path.join(repo, "refs", "main"), "w") as f:
            f.write("0123456789abcdef")
        model = ht.from_pretrained(Qwen2VL, "hoist/tiny-qwen2-vl", torch_dtype=BF16,
                                   device_map={"": "cpu"}, cache_dir=cache,
                                   local_files_only=True, source=self.SOURCE)
        self.assertTrue(torch.equal(logits(model), self.ref_logits))
        # without cache_dir: hoist's own resolver, by HF_HUB_CACHE, as the command does
        old = os.environ.get("HF_HUB_CACHE")
        os.environ["HF_HUB_CACHE"] = cache
        try:
            model = ht.from_pretrained(Qwen2VL, "hoist/tiny-qwen2-vl", torch_dtype=BF16,
                                       device_map={"": "cpu"}, source=self.SOURCE)
        finally:
            if old is None:
                os.environ.pop("HF_HUB_CACHE")
            else:
                os.environ["HF_HUB_CACHE"] = old
        self.assertTrue(torch.equal(logits(model), self.ref_logits))


@unittest.skipUnless(transformers is not None, "needs transformers, accelerate, safetensors")
class HoistGlueTest(GlueCases, unittest.TestCase):
    """hoist's own loader (the default source)."""

    SOURCE = staticmethod(lambda path: hoist_source(path))
    # accelerate's room for the largest unit (65,536 bytes) is kept on cpu too
    TIED_BUDGET = 250_000 + 65_536


@unittest.skipUnless(transformers is not None, "needs transformers, accelerate, safetensors")
class PlanFollowsTheModel(unittest.TestCase):
    """hoist's C planner given the model's units, order and ties (planning only: the
    budgets name two GPUs, which a plan may do where none is present)."""

    @classmethod
    def setUpClass(cls):
        quiet()
        cls.tmp = tempfile.mkdtemp(prefix="hoist-plan-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def request(self, tie=False):
        directory = tq.make_model_dir(self.tmp, tie_word_embeddings=tie or None)
        config = transformers.AutoConfig.from_pretrained(directory)
        with init_empty_weights():
            model = Qwen2VL._from_config(config, torch_dtype=BF16)
        from hoist import _compat

        _compat.tie_weights(model)
        checkpoint = hoist_source(directory)
        request, _ = ht.describe(model, checkpoint)
        return model, checkpoint, request

    def check_runs(self, request, placed, plan):
        devices = [ht._device_of(u.keys[0], placed) for u in request.units
                   if u.checkpoint_tensors]
        runs = [d for i, d in enumerate(devices) if i == 0 or d != devices[i - 1]]
        return devices, runs

    def test_two_gpus_cpu_and_disk_one_run_each_in_execution_order(self):
        model, checkpoint, request = self.request()
        budgets = {0: 200_000, 1: 150_000, "cpu": 200_000}
        placed, plan = checkpoint.plan_units(request, budgets, BF16)
        devices, runs = self.check_runs(request, placed, plan)
        self.assertEqual(runs, [0, 1, "cpu", "disk"])  # one run each, in device order
        self.assertEqual(plan.device_changes, 3)
        self.assertIn("3 device changes", str(plan))
        # the embeddings run first, on the first GPU; the head last, furthest out
        self.assertEqual(devices[0], 0)
        self.assertEqual(ht._device_of("lm_head", placed), "disk")
        # no-split modules whole: every tensor of a decoder layer / vision block on
        # its unit's device
        by_tensor = plan.placement
        names = {n for n in by_tensor}
        for unit in request.units:
            if not unit.no_split:
                continue
            ds = {by_tensor[n] for n in unit.checkpoint_tensors}
            self.assertEqual(len(ds), 1, unit.name)
            self.assertTrue(set(unit.checkpoint_tensors) <= names)
        # budgets kept, with accelerate's room for the largest unit on GPU 0 and cpu
        largest = max(u.nbytes for u in request.units)
        self.assertLessEqual(plan.bytes_per_device["cuda:0"], budgets[0] - largest)
        self.assertLessEqual(plan.bytes_per_device["cuda:1"], budgets[1])
        self.assertLessEqual(plan.bytes_per_device["cpu"], budgets["cpu"] - largest)

    def test_tied_embeddings_share_a_device(self):
        model, checkpoint, request = self.request(tie=True)
        self.assertEqual(len(request.tie_groups), 1)
        placed, plan = checkpoint.plan_units(request, {0: 200_000, 1: 150_000, "cpu": 1 << 20},
                                             BF16)
        group = request.tie_groups[0]
        devices = {ht._device_of(request.units[i].keys[0], placed) for i in group}
        self.assertEqual(devices, {0})  # with the embeddings, first
        self.assertTrue(all(u[4] for u in plan.units if u[0] in
                            {request.units[i].name for i in group}))
        # the alias the checkpoint also holds (lm_head.weight) is not loaded
        self.assertEqual(plan.placement["lm_head.weight"], "disk")
        self.assertEqual(plan.devices["disk"]["bytes"], 0)


@unittest.skipUnless(transformers is not None, "needs transformers, accelerate, safetensors")
class GlueTest(GlueCases, unittest.TestCase):
    """The safetensors stand-in."""

    SOURCE = staticmethod(lambda path: safetensors_source(path))
    TIED_BUDGET = 250_000


@unittest.skipUnless(transformers is not None and torch.cuda.is_available(), "needs a GPU")
class GpuGlueTest(unittest.TestCase):
    """The same checks with GPU placements (run where a GPU is present)."""

    @classmethod
    def setUpClass(cls):
        quiet()
        cls.tmp = tempfile.mkdtemp(prefix="hoist-glue-gpu-")
        cls.dir = tq.make_model_dir(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def check(self, device_map):
        probe = Qwen2VL.from_pretrained(self.dir, torch_dtype=BF16, device_map={"": "cpu"})
        device_map = {here(probe, k): v for k, v in device_map.items()}
        ref = Qwen2VL.from_pretrained(self.dir, torch_dtype=BF16, device_map=device_map)
        source = RecordingSource()
        model = ht.from_pretrained(Qwen2VL, self.dir, torch_dtype=BF16, device_map=device_map,
                                   source=source)
        self.assertEqual(model.hoist_load.copied, [])
        for name, b in ref.named_buffers():
            mine = dict(model.named_buffers())[name]
            self.assertTrue(torch.equal(mine.cpu(), b.cpu()), name)
        got = logits(model, "cuda:0")
        self.assertTrue(torch.equal(got, logits(ref, "cuda:0")))
        return model, source

    def test_all_on_gpu(self):
        model, source = self.check({"": 0})
        for ckpt, tensor in source.loaded.items():
            self.assertEqual(tensor.device.type, "cuda", ckpt)
        self.assertEqual(model.lm_head.weight.device.type, "cuda")

    def test_gpu_cpu_and_disk(self):
        mixed = {k: (0 if v == "cpu" else v) for k, v in MIXED.items()}
        mixed["model.layers.2"] = "cpu"
        mixed["visual.blocks.1"] = "cpu"
        self.check(mixed)


if __name__ == "__main__":
    unittest.main()
