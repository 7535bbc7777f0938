"""KineMIC fine-tuning support that does not touch upstream MDM: run settings, few-shot batch
assembly (targets + soft pairs), the run folder (args.json, resume state), the per-step loss log.
The TrainLoop subclass itself lives in mdm_kinemic.mdm.training.

May import: core, data, text and the package's utilities (atomic, flags).
"""
