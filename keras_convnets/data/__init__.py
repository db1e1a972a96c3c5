"""The data layer: the ``catalog`` (datasets by name or folder, described once; their raw examples and statistics),
the ``folders`` of class sub-folders, the per-image ``transforms`` (crops, resizing, decoding) and ``augment``
operations (RandAugment, TrivialAugment, random erasing, mixup, cutmix: stateless, from a seed), the input
``pipelines``, and the model's input normalization (``preprocessing``).

Knows models only through their pretrained-weights records; imports nothing of ``serving``, ``training`` or ``cli``.
This package imports nothing, so importing it is free.
"""
