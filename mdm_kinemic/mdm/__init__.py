"""The only layer that imports upstream MDM, in subpackages by job (lower ones first):

- ``upstream``: locating and importing upstream (its generic top-level names served from its root
  only), the open_clip and SMPL stand-ins, the ``--mdm_root`` / ``--clip_weights`` options, the
  ``--data_dir`` loader and the plot fix.
- ``model``: building upstream's MDM from its flags, KineMICMDM (dual condition, shared-weight
  teacher), LoRA through peft, dual classifier-free guidance, the sentence-encoder MDM.
- ``checkpoints``: upstream checkpoints, KineMIC checkpoints, random test checkpoints.
- ``training``: the TrainLoop subclass of KineMIC fine-tuning.
- ``sampling``: the student and the zero-shot prompt model at sampling time, the batched sampler,
  the ``--kinemic`` plugin and the hooks that install it into upstream's unmodified scripts.

Each subpackage imports only from the ones listed above it, and from core, data, text, training,
viz and the package's utilities (setup.cfg's import-linter contracts, checked by
tests/test_layers.py); nothing below mdm_kinemic.mdm imports it.
"""
