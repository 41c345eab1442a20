"""Backends that read GPUs and manage lease keys: NVML on a real node, or simulated."""
