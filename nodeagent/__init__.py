"""Voltpark node agent: reads a node's GPUs through NVML and manages lease SSH keys.

No Django here: the agent is deployed alone on every GPU node. This package root
imports no aiohttp, so the platform can take simulated_gpu_uuid cheaply; the
servers (start_in_thread, start_node_in_thread) live in nodeagent.server.
"""

from nodeagent.backends.simulated import SimulatedFleet, SimulatedNode, simulated_gpu_uuid
from nodeagent.keys import account_for_lease

__all__ = ["SimulatedFleet", "SimulatedNode", "account_for_lease", "simulated_gpu_uuid"]
