"""Downstream skeleton action recognition: ST-GCN, its training protocol, generative metrics."""
