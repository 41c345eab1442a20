"""The host backend: each lease a Linux account with its keys and only its GPUs, handed back clean.

Runs as root on a real node, beside the NVML reader that it asks whether the GPUs are free.
`backend.HostBackend` orders the steps and journals them; the other modules each do one kind of
change to the host, every one of them safe to repeat.
"""
