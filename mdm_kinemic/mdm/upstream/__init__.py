"""Locating and importing upstream MDM: the seam every other part of mdm/ goes through.

Holds locate.py (upstream's root, its top-level names served from there only, ``import_upstream``),
clip_compat.py (open_clip as OpenAI's ``clip``), smpl_compat.py (SMPL pass-through), options.py
(``--mdm_root``, ``--clip_weights``), hml_data.py (upstream's HumanML3D loader on ``--data_dir``)
and plotting.py (upstream's plot_3d_motion drawing with current matplotlib).

May import: upstream, mdm_kinemic.text and the package's utilities (atomic, flags); nothing else
of mdm/.
"""
