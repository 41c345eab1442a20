"""manage.py seed_fleet --nodes N [--early-stage-share 0.25]."""

import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from clusters.services.fleet import fleet_seed


class Command(BaseCommand):
    help = (
        "Create a fleet shaped like the real one (idempotent): 3 regions, clusters of 32 nodes, 8 GPUs each."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--nodes", type=int, required=True, help="Nodes in all, spread over the regions.")
        parser.add_argument(
            "--early-stage-share",
            type=float,
            default=0.25,
            help="Share of each region's nodes in the early-stage pool (0 to 1).",
        )
        parser.add_argument(
            "--agent-base", default="", help="Base URL of a simulated agent serving /nodes/<host>/."
        )
        parser.add_argument(
            "--agent-token", default="", help="Bearer token of the agents (stored encrypted)."
        )

    def handle(self, *args: object, **options: Any) -> None:
        nodes, share = int(options["nodes"]), float(options["early_stage_share"])
        if nodes < 1:
            raise CommandError("--nodes must be at least 1")
        if not 0 <= share <= 1:
            raise CommandError("--early-stage-share must be between 0 and 1")
        began = time.monotonic()
        result = fleet_seed(
            nodes=nodes,
            early_stage_share=share,
            agent_base=str(options["agent_base"]),
            agent_token=str(options["agent_token"]),
        )
        self.stdout.write(
            f"Created {result.nodes_created} nodes and {result.gpus_created} GPUs "
            f"in {time.monotonic() - began:.1f} s."
        )
