"""The Bandai Namco few-shot benchmark: split, stage driver, presets (docs/benchmark.md)."""
