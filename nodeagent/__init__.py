"""Voltpark node agent: reads a node's GPUs through NVML and manages lease accounts and keys.

No Django here: the agent is deployed alone on every GPU node. The platform imports only
`nodeagent.protocol`, the rules both sides share; everything else is the agent's own.
"""
