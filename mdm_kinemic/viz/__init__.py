"""Pictures: mining pictures and loss curves of a training run, stick figures of motions.

matplotlib is imported inside the functions (Agg backend), never at package import.
"""
