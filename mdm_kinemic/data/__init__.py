"""Motion data: HumanML3D layout, the 263-dim hml_vec conversion, readers, few-shot splits.

Never imports upstream MDM.
"""
