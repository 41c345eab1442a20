"""factory_boy factories for the foundation's models."""

import base64
import hashlib
import struct
from datetime import timedelta
from decimal import Decimal
from typing import cast

import factory
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP
from django.utils import timezone

from accounts.choices import Role
from accounts.models import Membership, Organization, SshKey, User
from billing.choices import PaymentTerms
from billing.models import BillingAccount
from clusters.choices import LeaseKind, LeaseState
from clusters.models import GPU, Cluster, Lease, Node, Region
from clusters.services.fleet import gpu_uuid
from nodeagent.protocol import parse_ssh_public_key


def public_key_for(email: str) -> str:
    """A well-formed ed25519 public key line of its own for each address (no private key exists)."""

    def string(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    blob = string(b"ssh-ed25519") + string(hashlib.sha256(email.encode()).digest())
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {email}"


def ssh_key_for(user: User) -> SshKey:
    """Give `user` an SSH key (booking refuses a booker without any)."""
    parsed = parse_ssh_public_key(public_key_for(user.email))
    key, _ = SshKey.objects.get_or_create(
        user=user,
        fingerprint=parsed.fingerprint,
        defaults={
            "name": "laptop",
            "key_type": parsed.key_type,
            "bits": parsed.bits,
            "public_key": parsed.line,
        },
    )
    return key


class UserFactory(factory.django.DjangoModelFactory):
    """A user whose address is verified (as booking and invitations require) with an SSH key (as
    booking requires); pass `email_verified=False` for one who has not opened the confirmation link
    yet, `ssh_key=False` for one who has added no key."""

    class Meta:
        model = User
        django_get_or_create = ["email"]
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Faker("name")
    password = factory.django.Password("correct horse battery staple")

    @factory.post_generation
    def email_verified(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            user = cast(User, self)  # factory_boy passes the created user as self
            EmailAddress.objects.update_or_create(
                user=user, email=user.email, defaults={"primary": True, "verified": extracted is not False}
            )

    @factory.post_generation
    def ssh_key(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create and extracted is not False:
            ssh_key_for(cast(User, self))


# The authenticator-app secret of the staff in the tests (`pyotp.TOTP(STAFF_TOTP_SECRET).now()`).
STAFF_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def mfa_enable(user: User, secret: str = STAFF_TOTP_SECRET) -> User:
    """Give `user` an authenticator app, as staff must have (accounts.selectors.staff)."""
    TOTP.activate(user, secret)
    return user


class OrganizationFactory(factory.django.DjangoModelFactory):
    """An organization on invoice terms with a generous credit limit, so that tests about anything but
    payment can book at once; `OrganizationFactory.create(terms="prepaid")` makes one that has not paid
    yet, as a new sign-up is (prepaid, no card, no balance)."""

    class Meta:
        model = Organization
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Org {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")
    billing_email = factory.LazyAttribute(lambda o: f"billing@{o.slug}.example.com")

    @factory.post_generation
    def terms(self, create: bool, extracted: str | None, **kwargs: object) -> None:
        if create and extracted != PaymentTerms.PREPAID:
            BillingAccount.objects.create(
                organization=cast(Organization, self),
                terms=PaymentTerms.INVOICED,
                credit_limit=Decimal("1000000.00"),
            )


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Role.MEMBER


class RegionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Region
        django_get_or_create = ["code"]

    code = "us-tx-1"
    name = "Texas 1"
    us_state = "Texas"


class ClusterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cluster

    region = factory.SubFactory(RegionFactory)
    name = factory.Sequence(lambda n: f"tx1-c{n:02d}")


class NodeFactory(factory.django.DjangoModelFactory):
    """A node with its eight GPUs."""

    class Meta:
        model = Node
        skip_postgeneration_save = True

    cluster = factory.SubFactory(ClusterFactory)
    hostname = factory.Sequence(lambda n: f"test-n{n:04d}")

    @factory.post_generation
    def with_gpus(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create and extracted is not False:
            node = cast(Node, self)  # factory_boy passes the created node as self
            GPU.objects.bulk_create(
                GPU(node=node, index=i, uuid=gpu_uuid(node.hostname, i)) for i in range(8)
            )


class LeaseFactory(factory.django.DjangoModelFactory):
    """A lease row without allocations; booking services create real ones."""

    class Meta:
        model = Lease

    organization = factory.SubFactory(OrganizationFactory)
    booked_by = factory.SubFactory(UserFactory)
    region = factory.SubFactory(RegionFactory)
    gpus = 8
    kind = LeaseKind.RESERVED
    start = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))
    end = factory.LazyAttribute(lambda o: o.start + timedelta(hours=2))
    state = LeaseState.SCHEDULED
    price_per_gpu_hour = "1.9900"
