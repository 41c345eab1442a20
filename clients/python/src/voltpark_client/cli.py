"""`voltpark`: book and manage GPU leases from a terminal, on the public API.

Tables for people, `--json` for scripts; the API's own sentence when it refuses; an exit code that
says what went wrong (see EXIT_CODES, printed by `voltpark --help`).
"""

import argparse
import getpass
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import httpx

from voltpark_client import output
from voltpark_client.client import ApiError, Client, ConnectionFailed, LeaseEnded, VoltparkError, WaitTimedOut
from voltpark_client.config import ConfigError, forget_settings, load_settings, save_settings
from voltpark_client.times import local, parse_time

# Exit codes: what went wrong, for scripts (`voltpark --help` lists them).
OK = 0
FAILED = 1
USAGE = 2
NOT_AUTHENTICATED = 3
NOT_ALLOWED = 4
NOT_FOUND = 5
REFUSED = 6
UNREACHABLE = 7
TIMED_OUT = 8
LEASE_ENDED = 9
EXIT_CODES = {
    OK: "done",
    FAILED: "something else went wrong (the server failed, or answered what the client did not expect)",
    USAGE: "the command or a value given to it is wrong (the API's 400 and 422 too)",
    NOT_AUTHENTICATED: "no API token, or the API refused it (401)",
    NOT_ALLOWED: "your role or your organization's quota does not allow it (403)",
    NOT_FOUND: "no such lease, key or invoice of yours (404)",
    REFUSED: "refused as things stand: no capacity, a lease in the wrong state, too many requests (409, 429)",
    UNREACHABLE: "the server could not be reached",
    TIMED_OUT: "--wait ran out before the lease became active (it may still start)",
    LEASE_ENDED: "the lease waited for failed, ended or was cancelled instead of becoming active",
}
STATUS_EXITS = {
    400: USAGE,
    401: NOT_AUTHENTICATED,
    403: NOT_ALLOWED,
    404: NOT_FOUND,
    409: REFUSED,
    422: USAGE,
}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
LEASE_STATES = ("scheduled", "active", "ended", "cancelled", "failed")


class UsageError(Exception):
    """A value the command cannot use; exits USAGE with the message."""


@dataclass
class Context:
    """What a command runs with: its arguments, where it prints, and how it reaches the API."""

    args: argparse.Namespace
    out: TextIO
    err: TextIO
    transport: httpx.BaseTransport | None = None
    _client: Client | None = field(default=None, init=False)

    def client(self) -> Client:
        if self._client is None:
            settings = load_settings(self.args.url)
            self._client = Client.from_environment(settings=settings, transport=self.transport)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def say(self, text: str) -> None:
        """A line for people on stdout (nothing in --json mode, where stdout is the JSON)."""
        if not self.args.json:
            self.out.write(text + "\n")


def main(argv: Sequence[str] | None = None, *, transport: httpx.BaseTransport | None = None) -> int:
    """Run one command; returns the exit code (console entry point: `voltpark`)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit:  # argparse has printed the usage error (or the help)
        return exit.code if isinstance(exit.code, int) else USAGE
    context = Context(args, sys.stdout, sys.stderr, transport)
    try:
        return args.command(context) or OK
    except ApiError as error:
        context.err.write(f"{error.detail}\n")
        if args.json:
            output.as_json(error.body, context.out)
        return STATUS_EXITS.get(error.status, REFUSED if error.status == 429 else FAILED)
    except UsageError as error:
        context.err.write(f"{error}\n")
        return USAGE
    except ConnectionFailed as error:
        context.err.write(f"{error}\n")
        return UNREACHABLE
    except (WaitTimedOut, LeaseEnded) as error:
        context.err.write(f"{error}\n")
        if args.json:
            output.as_json(error.lease, context.out)
        return TIMED_OUT if isinstance(error, WaitTimedOut) else LEASE_ENDED
    except (ConfigError, VoltparkError) as error:
        context.err.write(f"{error}\n")
        return NOT_AUTHENTICATED
    except KeyboardInterrupt:
        context.err.write("Interrupted.\n")
        return 130
    finally:
        context.close()


# --- Commands


def login(context: Context) -> None:
    """Check a token against the API, then keep it (and the URL) in the config file."""
    args = context.args
    settings = load_settings(args.url)
    if args.token_stdin:
        token = sys.stdin.readline().strip()
    else:
        token = getpass.getpass(f"API token (create one at {settings.url}/account/tokens/): ").strip()
    if not token:
        raise UsageError("No token given.")
    with Client(settings.url, token, transport=context.transport) as vp:
        vp.regions()
    path = save_settings(url=settings.url, token=token)
    context.say(f"Logged in to {settings.url}; the token is kept in {path} (readable by you only).")


def logout(context: Context) -> None:
    if forget_settings():
        context.say(f"Forgot the token kept in {load_settings().path}.")
    else:
        context.say("No token was kept; nothing to forget.")


def regions(context: Context) -> None:
    found = context.client().regions()
    if context.args.json:
        return output.as_json(found, context.out)
    rows = [
        (r["code"], r["name"], r["us_state"], r.get("gpus_free_now", r["gpus_healthy"]), r["gpus_total"])
        for r in found
    ]
    output.table(["REGION", "NAME", "STATE", "FREE NOW", "GPUS"], rows, context.out)


def book(context: Context) -> None:
    """Book on demand (or reserved with --start/--end/--hours), in a region or wherever it fits."""
    args, vp = context.args, context.client()
    start, end = _window(args)
    key_ids = _key_ids(vp, args.key)
    lease = _book_somewhere(context, start=start, end=end, key_ids=key_ids)
    context.say(f"Booked lease {lease['id']}: {_summary(lease)}.")
    if args.wait:
        lease = _wait(context, lease)
    if args.json:
        return output.as_json(lease, context.out)
    _print_ssh(context, lease)


def _window(args: argparse.Namespace) -> tuple[datetime | None, datetime | None]:
    if args.hours is not None and args.end is not None:
        raise UsageError("Give --end or --hours, not both.")
    if args.start is None and args.end is None and args.hours is None:
        return None, None
    start = args.start or parse_time("now")
    if args.hours is not None:
        return start, start + timedelta(hours=args.hours)
    if args.end is None:
        raise UsageError("A reserved lease needs an end: give --end or --hours.")
    return start, args.end


def _key_ids(vp: Client, wanted: list[str]) -> list[str]:
    keys = vp.ssh_keys()
    if not keys:
        raise UsageError(
            "You have no SSH key, so nobody could log in to the lease: "
            "add one with `voltpark keys add ~/.ssh/id_ed25519.pub`."
        )
    if not wanted:
        return [key["id"] for key in keys]
    return [_find_key(keys, name)["id"] for name in wanted]


def _find_key(keys: list[dict[str, Any]], wanted: str) -> dict[str, Any]:
    for key in keys:
        if wanted in (key["name"], key["id"], key["fingerprint"]) or key["id"].startswith(wanted.lower()):
            return key
    names = ", ".join(key["name"] for key in keys)
    raise UsageError(f"No SSH key of yours is called {wanted!r} (yours: {names}).")


def _book_somewhere(
    context: Context, *, start: datetime | None, end: datetime | None, key_ids: list[str]
) -> dict[str, Any]:
    """In the region asked for, or in each region in turn, most free GPUs first, until one fits."""
    args, vp = context.args, context.client()
    candidates = [args.region] if args.region else _regions_by_free(vp, args.gpus, start, end)
    refusals: list[str] = []
    for region in candidates:
        try:
            return vp.book(gpus=args.gpus, region=region, start=start, end=end, ssh_key_ids=key_ids)
        except ApiError as error:
            if error.code != "no_capacity" or len(candidates) == 1:
                raise
            refusals.append(f"{region}: {error.detail}")
    context.err.write("\n".join(refusals) + "\n")
    raise ApiError.made_here(409, "no_capacity", f"{args.gpus} GPUs fit in no region for that window.")


def _regions_by_free(vp: Client, gpus: int, start: datetime | None, end: datetime | None) -> list[str]:
    free = {
        region["code"]: vp.availability(region=region["code"], gpus=gpus, start=start, end=end)
        for region in vp.regions()
    }
    return sorted(free, key=lambda code: (not free[code]["can_place"], -free[code]["free_gpus"], code))


def _wait(context: Context, lease: dict[str, Any]) -> dict[str, Any]:
    progress = output.Progress(context.err)

    def show(now: dict[str, Any]) -> None:
        progress.update(f"Waiting for lease {now['id'][:8]} to start: {now['state']}")

    try:
        return context.client().wait_until_active(
            lease["id"], timeout_s=context.args.timeout, interval_s=context.args.interval, on_poll=show
        )
    finally:
        progress.done()


def _print_ssh(context: Context, lease: dict[str, Any]) -> None:
    if lease["state"] == "active":
        context.say(f"Lease {lease['id'][:8]} is active. Log in with:")
    elif lease["state"] == "scheduled":
        context.say(f"Starts {local(lease['start'])}; then log in with:")
    for node in lease["nodes"]:
        if node.get("ssh_command"):
            context.say(f"  {node['ssh_command']}")


def leases(context: Context) -> None:
    found = context.client().leases(state=context.args.state)
    if context.args.json:
        return output.as_json(found, context.out)
    rows = [
        (
            lease["id"][:8],
            lease["state"],
            lease["gpus"],
            lease["region"],
            _kind(lease),
            local(lease["start"]),
            local(lease["end"]) if lease["end"] else "until released",
            f"${float(lease['price_per_gpu_hour']):.2f}",
        )
        for lease in found
    ]
    if not rows:
        return context.say("No leases yet: `voltpark book --gpus 8 --wait` books one.")
    output.table(
        ["LEASE", "STATE", "GPUS", "REGION", "KIND", "START", "END", "PER GPU-HOUR"], rows, context.out
    )


def lease_show(context: Context) -> None:
    vp = context.client()
    lease = vp.lease(_lease_id(vp, context.args.lease))
    if context.args.json:
        return output.as_json(lease, context.out)
    state = lease["state"] + (f" ({lease['state_reason']})" if lease.get("state_reason") else "")
    output.facts(
        [
            ("Lease", lease["id"]),
            ("State", state),
            ("GPUs", f"{lease['gpus']} in {_region(lease)}"),
            ("Kind", _kind(lease)),
            ("Start", local(lease["start"])),
            ("End", local(lease["end"]) if lease["end"] else "runs until released"),
            ("Price", f"${float(lease['price_per_gpu_hour']):.2f} per GPU-hour"),
            ("Nodes", ", ".join(f"{n['hostname']} (GPUs {_indices(n)})" for n in lease["nodes"]) or "-"),
        ],
        context.out,
    )
    if lease["state"] in ("scheduled", "active"):
        _print_ssh(context, lease)


def extend(context: Context) -> None:
    vp = context.client()
    lease = vp.extend(_lease_id(vp, context.args.lease), end=context.args.until)
    if context.args.json:
        return output.as_json(lease, context.out)
    context.say(f"Lease {lease['id'][:8]} now ends {local(lease['end'])}.")


def release(context: Context) -> None:
    vp = context.client()
    lease = vp.release(_lease_id(vp, context.args.lease))
    if context.args.json:
        return output.as_json(lease, context.out)
    if lease["state"] == "cancelled":
        context.say(f"Lease {lease['id'][:8]} was cancelled before its start; nothing is billed.")
    else:
        context.say(f"Released lease {lease['id'][:8]}: billing stopped {local(lease['end'])}.")


def keys_list(context: Context) -> None:
    found = context.client().ssh_keys()
    if context.args.json:
        return output.as_json(found, context.out)
    if not found:
        return context.say("No SSH keys yet: `voltpark keys add ~/.ssh/id_ed25519.pub` adds one.")
    rows = [(key["id"][:8], key["name"], key["key_type"], key["fingerprint"]) for key in found]
    output.table(["KEY", "NAME", "TYPE", "FINGERPRINT"], rows, context.out)


def keys_add(context: Context) -> None:
    args = context.args
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).expanduser().read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"Cannot read {args.file}: {error}") from error
    key = context.client().ssh_key_add(public_key=text.strip(), name=args.name or "")
    if args.json:
        return output.as_json(key, context.out)
    context.say(f"Added key {key['name']} ({key['fingerprint']}); leases booked from now on install it.")


def keys_remove(context: Context) -> None:
    vp = context.client()
    key = _find_key(vp.ssh_keys(), context.args.key)
    vp.ssh_key_remove(key["id"])
    context.say(f"Removed key {key['name']}; running leases keep it until they end.")


def invoices(context: Context) -> None:
    found = context.client().invoices()
    if context.args.json:
        return output.as_json(found, context.out)
    if not found:
        return context.say("No invoices yet: each month's is issued after the month closes.")
    rows = [
        (
            invoice["number"] or "(draft)",
            _period(invoice["period_start"], invoice["period_end"]),
            invoice["status"],
            f"{invoice['total']} {invoice['currency']}",
            local(invoice["issued_at"]),
        )
        for invoice in found
    ]
    output.table(["INVOICE", "PERIOD", "STATUS", "TOTAL", "ISSUED"], rows, context.out)


def offerings(context: Context) -> None:
    """The earliest windows that can be booked, soonest first, each with the command that books it."""
    args = context.args
    found = context.client().offerings(
        gpus=args.gpus, hours=args.hours, region=args.region, per_region=args.per_region
    )
    if args.json:
        return output.as_json(found, context.out)
    if not found["offerings"]:
        return context.say(f"No window of {args.gpus} GPUs for {args.hours} hours can be booked.")
    rows = [
        (
            o["region"],
            o["region_name"],
            local(o["start"]),
            local(o["end"]),
            o["gpus"],
            f"{o['price_per_gpu_hour']}",
            f"{o['total_price']} {o['currency']}",
        )
        for o in found["offerings"]
    ]
    output.table(["REGION", "NAME", "START", "END", "GPUS", "PER GPU-HOUR", "TOTAL"], rows, context.out)
    first = found["offerings"][0]
    context.say(
        f"Book the first: voltpark book --gpus {first['gpus']} --region {first['region']} "
        f"--start {first['start']} --end {first['end']}"
    )


def balance(context: Context) -> None:
    """The organization's balance, what it may still spend, its rate and when it runs out."""
    found = context.client().balance()
    if context.args.json:
        return output.as_json(found, context.out)
    currency = found["currency"]
    runway = found["runway_hours"]
    pairs = [
        ("Terms", found["terms"]),
        ("Balance", f"{found['balance']} {currency}"),
        ("Available", f"{found['available']} {currency}"),
        ("Credit left", f"{found['credit_left']} {currency}"),
        ("Spending", f"{found['spend_rate_per_hour']} {currency} per hour on demand"),
        ("Runway", "no end in sight" if runway is None else f"{runway} hours"),
        ("Runs out", local(found["runs_out_at"])),
        ("This month", f"{found['month_spend']} {currency}"),
    ]
    output.facts(pairs, context.out)


# --- Helpers


def _lease_id(vp: Client, given: str) -> str:
    """A full lease id, or the one lease whose id starts with what was given (as the pages show 8)."""
    if UUID.match(given):
        return given
    matches = [lease["id"] for lease in vp.leases() if lease["id"].startswith(given.lower())]
    if not matches:
        raise ApiError.made_here(404, "not_found", f"No lease of yours has an id starting {given!r}.")
    if len(matches) > 1:
        raise UsageError(f"{len(matches)} of your leases start {given!r}: give more of the id.")
    return matches[0]


def _period(start: str, end: str) -> str:
    """An invoice's period [start, end) as its first and last day (periods are UTC days)."""
    last = datetime.fromisoformat(end.replace("Z", "+00:00")) - timedelta(days=1)
    return f"{start[:10]} to {last.date().isoformat()}"


def _summary(lease: dict[str, Any]) -> str:
    return f"{lease['gpus']} GPUs in {_region(lease)}, {_kind(lease)}, {lease['state']}"


def _region(lease: dict[str, Any]) -> str:
    name = lease.get("region_name")
    return f"{name} ({lease['region']})" if name else lease["region"]


def _kind(lease: dict[str, Any]) -> str:
    return "on demand" if lease["kind"] == "on_demand" else "reserved"


def _indices(node: dict[str, Any]) -> str:
    return ",".join(str(index) for index in node["gpu_indices"])


# --- Arguments


def _time(text: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be above zero")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for scripts"
    )
    common.add_argument(
        "--url", default=argparse.SUPPRESS, help="the API's base URL (default: VOLTPARK_URL, then login's)"
    )
    epilog = "exit codes:\n" + "\n".join(f"  {code}  {meaning}" for code, meaning in EXIT_CODES.items())
    parser = argparse.ArgumentParser(
        prog="voltpark",
        description="Book NVIDIA H100 GPUs on Voltpark. The API token comes from VOLTPARK_TOKEN, "
        "else from `voltpark login`.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.set_defaults(json=False, url=None)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(name: str, run: Callable[[Context], None], help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help, parents=[common])
        sub.set_defaults(command=run)
        return sub

    sub = command("login", login, "check an API token and keep it for the next commands")
    sub.add_argument("--token-stdin", action="store_true", help="read the token from stdin, not a prompt")
    command("logout", logout, "forget the token kept by login")
    command("regions", regions, "the regions, their names and the GPUs free now")

    sub = command("book", book, "book GPUs: on demand, or reserved with --start and --end (or --hours)")
    sub.add_argument("--gpus", type=_positive(int), required=True, help="1, 2, 4, 8 or a multiple of 8")
    sub.add_argument("--region", help="a region code (default: the region with the most GPUs free that fits)")
    sub.add_argument(
        "--start", type=_time, help="reserved: now, +2h, 2026-05-01 09:00 (your zone) or ISO 8601"
    )
    sub.add_argument("--end", type=_time, help="reserved: when it ends (same forms as --start)")
    sub.add_argument("--hours", type=_positive(float), help="reserved: how long, from --start (default now)")
    sub.add_argument(
        "--key", action="append", default=[], help="an SSH key's name or id (default: all yours)"
    )
    sub.add_argument(
        "--wait", action="store_true", help="wait until the lease is active, then print how to log in"
    )
    sub.add_argument("--timeout", type=_positive(float), default=600.0, help="seconds --wait waits (600)")
    sub.add_argument("--interval", type=_positive(float), default=2.0, help=argparse.SUPPRESS)

    sub = command("leases", leases, "your organization's leases, newest first")
    sub.add_argument("--state", choices=LEASE_STATES)
    sub = command("lease", lease_show, "one lease: its state, nodes and SSH commands")
    sub.add_argument("lease", metavar="ID", help="the lease's id, or its first characters")
    sub = command("extend", extend, "move a reserved lease's end later, on the same GPUs")
    sub.add_argument("lease", metavar="ID")
    sub.add_argument(
        "--until", type=_time, required=True, help="the new end: +2h, 2026-05-01 18:00, ISO 8601"
    )
    sub = command("release", release, "end a lease now (billing stops); a scheduled one is cancelled")
    sub.add_argument("lease", metavar="ID")

    sub = command("keys", keys_list, "your SSH keys; `keys add FILE`, `keys remove NAME`")
    key_commands = sub.add_subparsers(title="key commands", metavar="KEY_COMMAND")
    add = key_commands.add_parser("add", help="add a public key (FILE, or - for stdin)", parents=[common])
    add.add_argument("file", metavar="FILE")
    add.add_argument("--name", help="what to call it (default: the key's comment)")
    add.set_defaults(command=keys_add)
    remove = key_commands.add_parser("remove", help="remove a key by name or id", parents=[common])
    remove.add_argument("key", metavar="NAME")
    remove.set_defaults(command=keys_remove)

    sub = command(
        "offerings", offerings, "the earliest windows of --gpus GPUs for --hours hours you can book"
    )
    sub.add_argument("--gpus", type=_positive(int), required=True, help="1, 2, 4 or 8 or a multiple of 8")
    sub.add_argument("--hours", type=_positive(int), required=True, help="how long the lease lasts")
    sub.add_argument("--region", help="only this region (default: each region)")
    sub.add_argument(
        "--per-region", type=_positive(int), default=1, help="windows per region, one after another (1-3)"
    )

    command("invoices", invoices, "your organization's invoices (owners and finance members)")
    command("balance", balance, "your organization's balance, credit, spend rate and runway")
    return parser
