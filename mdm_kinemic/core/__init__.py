"""The KineMIC method in pure torch and numpy: mining, MIC module, window mining, losses.

Never imports upstream MDM; written against the small :class:`Denoiser` protocol.
"""
