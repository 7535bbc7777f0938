"""Checkpoint files: upstream's (args.json + model*.pt), KineMIC's (adapters, action embedding,
MIC module) and random upstream-format ones for dry runs and tests.

May import: mdm.model, mdm.upstream, core, data, text and the package's utilities; not
mdm.training or mdm.sampling.
"""
