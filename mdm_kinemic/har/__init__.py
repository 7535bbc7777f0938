"""Downstream skeleton action recognition: ST-GCN, its training protocol, generative metrics,
PYSKL annotations in and out, and the artefacts each run leaves (recognisers, scores, logs)."""
