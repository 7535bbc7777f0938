"""mdm-kinemic: KineMIC few-shot action synthesis as a plugin for the Motion Diffusion Model.

Cazzola & Alboody, "KineMIC: Kinetic Mining In Context for few-shot action synthesis by
text-to-motion distillation", arXiv 2512.11654 (ICPR 2026).
"""

__version__ = "0.1.0"
