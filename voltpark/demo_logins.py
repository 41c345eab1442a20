"""The demo's people, what each of them is and where they work: read by `seed_demo` (which makes
them) and by `demo_run` (which prints them again, with the address, once the site answers). No
Django here, so the runner can print them without setting Django up."""

from dataclasses import dataclass

DEMO_PASSWORD = "voltpark-demo"
# Staff need a second factor: the demo's staff have this authenticator-app secret (add it to any
# authenticator app, or run `python -c "import pyotp; print(pyotp.TOTP('<secret>').now())"`).
DEMO_TOTP_SECRET = "VOLTPARKDEMOSTAFFTOTPSECRET23456"


@dataclass(frozen=True)
class DemoPerson:
    email: str
    name: str
    what: str  # their role and organization, and what they see
    staff_admin: bool = False
    staff_finance: bool = False


PEOPLE = [
    DemoPerson("owner@demo.voltpark.dev", "Olivia Owner", "owner of Acme AI: books, members, keys, billing"),
    DemoPerson("member@demo.voltpark.dev", "Max Member", "member of Acme AI: books and manages leases"),
    DemoPerson(
        "finance@demo.voltpark.dev",
        "Fay Finance",
        "finance member of Acme AI: Acme's billing page only (not the staff finance page)",
    ),
    DemoPerson(
        "admin@demo.voltpark.dev",
        "Ada Admin",
        "Voltpark staff admin: fleet, early-stage queue and quota requests (needs the code)",
        staff_admin=True,
    ),
    DemoPerson(
        "cfo@demo.voltpark.dev",
        "Carl Staff-Finance",
        "Voltpark staff finance: month closes, every invoice, revenue (needs the code)",
        staff_finance=True,
    ),
    DemoPerson(
        "founder@demo.voltpark.dev",
        "Nora Founder",
        "owner of Nebula Labs, whose early-stage application waits for the admin",
    ),
]


def logins_text() -> str:
    """The logins as printed: one line each with role and organization, then the password and code."""
    width = max(len(person.email) for person in PEOPLE)
    lines = [f"  {person.email:{width}}  {person.what}" for person in PEOPLE]
    lines.append(f"Password for all: {DEMO_PASSWORD}")
    lines.append(f"Staff sign in with an authenticator app too: secret {DEMO_TOTP_SECRET}")
    return "\n".join(lines)
