"""The tiny Qwen2-VL of tests/data/reference, made loadable by the installed transformers.

tests/data/reference/tiny-qwen2-vl was saved by transformers 5: its config.json is
nested (the language model's settings under "text_config", RoPE under
"rope_parameters"), and its image/video token ids are the real Qwen2-VL ids
(151652..151656), outside its 512-token vocabulary. Its shards use the checkpoint
names every version reads (`model.layers.N`, `visual.`).

make_model_dir() writes, in a fresh directory, a config.json that transformers 4.46's
flat Qwen2VLConfig reads the same way (or, where the installed config class nests its
text settings, the nested one as saved), with the vision token ids moved into the
vocabulary, beside symlinks to the shards and their index. model_inputs() gives a
deterministic input that runs the vision tower.
"""

import json
import os
import tempfile

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REFERENCE = os.path.join(ROOT, "tests", "data", "reference")
MODEL = os.path.join(REFERENCE, "tiny-qwen2-vl")
# torch.save of the model's state_dict as transformers 5 names it in memory
# (`model.language_model.layers.N`, `model.visual.`).
STATE_DICT = os.path.join(REFERENCE, "tiny-qwen2-vl.pytorch_model.bin")

# Vision token ids inside the vocabulary (512): the top of it, which the tiny
# checkpoint's text never uses.
TOKEN_IDS = {
    "vision_start_token_id": 500,
    "vision_end_token_id": 501,
    "vision_token_id": 502,
    "image_token_id": 503,
    "video_token_id": 504,
}

# Settings of text_config that Qwen2VLConfig of 4.46 takes at the top level.
_TEXT_KEYS = (
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
    "num_attention_heads", "num_key_value_heads", "hidden_act", "max_position_embeddings",
    "initializer_range", "rms_norm_eps", "use_cache", "use_sliding_window",
    "sliding_window", "max_window_layers", "attention_dropout", "bos_token_id",
    "eos_token_id", "pad_token_id",
)
# Settings of vision_config that Qwen2VLVisionConfig of 4.46 takes.
_VISION_KEYS = (
    "depth", "embed_dim", "hidden_size", "hidden_act", "mlp_ratio", "num_heads",
    "in_channels", "patch_size", "spatial_merge_size", "temporal_patch_size",
)
# 4.46's VisionRotaryEmbedding has this theta built in; the nested config states it.
_VISION_ROPE_THETA = 10000.0


def flat_config(nested, tie_word_embeddings=None):
    """The flat (transformers 4.46) form of the nested Qwen2-VL config `nested`."""
    text = nested["text_config"]
    vision = nested["vision_config"]
    rope = text.get("rope_parameters") or {}
    if rope.get("type", rope.get("rope_type")) not in ("mrope", "default"):
        raise ValueError(f"unexpected text RoPE {rope!r}")
    vision_rope = vision.get("rope_parameters") or {}
    if vision_rope.get("rope_theta", _VISION_ROPE_THETA) != _VISION_ROPE_THETA:
        raise ValueError(f"vision RoPE theta {vision_rope['rope_theta']} is not 4.46's fixed "
                         f"{_VISION_ROPE_THETA}")

    flat = {"architectures": nested["architectures"], "model_type": "qwen2_vl"}
    flat.update({k: text[k] for k in _TEXT_KEYS if k in text})
    flat["rope_theta"] = rope.get("rope_theta", 1000000.0)
    # 4.46 turns {"type": "mrope"} into the default RoPE with sections.
    flat["rope_scaling"] = {"type": "mrope", "mrope_section": list(rope["mrope_section"])}
    flat["torch_dtype"] = nested.get("dtype") or nested.get("torch_dtype") or text.get("dtype")
    flat["tie_word_embeddings"] = (nested.get("tie_word_embeddings", False)
                                   if tie_word_embeddings is None else tie_word_embeddings)
    flat["vision_config"] = {k: vision[k] for k in _VISION_KEYS if k in vision}
    flat.update(TOKEN_IDS)
    flat["transformers_version"] = "4.46.3"
    return flat


def nested_config(nested, tie_word_embeddings=None):
    """The nested config as saved, with the vision token ids moved into the vocabulary
    (for a transformers whose Qwen2VLConfig nests the text settings)."""
    out = json.loads(json.dumps(nested))
    out.update(TOKEN_IDS)
    if tie_word_embeddings is not None:
        out["tie_word_embeddings"] = tie_word_embeddings
        out["text_config"]["tie_word_embeddings"] = tie_word_embeddings
    return out


def installed_config_nests():
    """Whether the installed Qwen2VLConfig has a text_config (4.52 and later)."""
    from transformers import Qwen2VLConfig

    return "text_config" in (getattr(Qwen2VLConfig, "sub_configs", None) or {})


def make_model_dir(parent=None, tie_word_embeddings=None):
    """A directory holding a config.json the installed transformers reads (flat for
    4.46, nested where the config class nests), the generation config, and symlinks
    to the reference shards and index. The caller removes it (it is under parent, or
    a fresh temporary directory)."""
    with open(os.path.join(MODEL, "config.json")) as f:
        nested = json.load(f)
    form = nested_config if installed_config_nests() else flat_config
    out = tempfile.mkdtemp(prefix="tiny-qwen2-vl-", dir=parent)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(form(nested, tie_word_embeddings), f, indent=2)
    for name in sorted(os.listdir(MODEL)):
        if name.endswith(".safetensors") or name == "model.safetensors.index.json":
            os.symlink(os.path.join(MODEL, name), os.path.join(out, name))
    with open(os.path.join(MODEL, "generation_config.json")) as f:
        generation = json.load(f)
    generation.pop("transformers_version", None)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump(generation, f, indent=2)
    return out


def model_inputs(seed=0, image_scale=1.0):
    """input_ids, attention_mask, pixel_values and image_grid_thw for one image of
    4 x 4 patches (merged 2 x 2 into 4 image tokens) between text tokens.
    image_scale scales the pixels, so a test can tell whether the image reached the
    logits."""
    g = torch.Generator().manual_seed(seed)
    text_before = torch.randint(0, 500, (5,), generator=g)
    text_after = torch.randint(0, 500, (6,), generator=g)
    image_tokens = 4  # (4 / 2) * (4 / 2)
    ids = torch.cat([
        text_before,
        torch.tensor([TOKEN_IDS["vision_start_token_id"]]),
        torch.full((image_tokens,), TOKEN_IDS["image_token_id"]),
        torch.tensor([TOKEN_IDS["vision_end_token_id"]]),
        text_after,
    ]).unsqueeze(0)
    grid = torch.tensor([[1, 4, 4]])
    # One row per patch: channels x temporal patch x patch x patch = 3 * 2 * 14 * 14.
    pixels = torch.randn(16, 3 * 2 * 14 * 14, generator=g) * image_scale
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "pixel_values": pixels,
        "image_grid_thw": grid,
    }


def forward_logits(model, inputs, device="cpu"):
    """The logits of one forward pass on inputs moved to device, with the multimodal
    (3-D) position ids that generate() would use. 4.46 computes them only when
    generating, so they are passed explicitly; later versions compute the same ones
    in forward()."""
    inputs = {k: v.to(device) for k, v in inputs.items()}
    rope_index = getattr(model, "get_rope_index", None) or model.model.get_rope_index
    position_ids, _ = rope_index(inputs["input_ids"], inputs["image_grid_thw"], None,
                                 inputs["attention_mask"])
    with torch.no_grad():
        out = model(**inputs, position_ids=position_ids, use_cache=False)
    return out.logits
