"""Text encoders behind one interface (CLIP through open_clip, a sentence encoder), cached."""
