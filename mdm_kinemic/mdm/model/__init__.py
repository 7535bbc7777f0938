"""The networks: upstream's MDM built from its flags, KineMICMDM, LoRA, guidance.

Holds build.py (``build_upstream_model``), kinemic_mdm.py (the dual-condition student whose
teacher is the same network with adapters off), lora.py (LoRA through peft), guidance.py (dual
classifier-free guidance) and sentence_text.py (MDM conditioned by a sentence encoder).

May import: mdm.upstream, core, text and the package's utilities; not mdm.checkpoints,
mdm.training or mdm.sampling.
"""
