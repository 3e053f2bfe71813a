"""hoist: load model checkpoints from storage straight into device memory.

The CPython extension over libhoist (checkpoints, plans, loads, DLPack tensors)
comes in a later phase. hoist.transformers already loads transformers models, with
tensors from a Source (hoist.source); until the extension exists the only source is
the safetensors stand-in. Importing hoist imports neither torch nor transformers.
"""
