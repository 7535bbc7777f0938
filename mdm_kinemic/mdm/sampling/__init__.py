"""Sampling: the KineMIC student and the zero-shot prompt model, the batched sampler, the
``--kinemic`` plugin for upstream's scripts and the hooks that install it.

May import: mdm.checkpoints, mdm.model, mdm.upstream, core, data, text and the package's
utilities; not mdm.training.
"""
