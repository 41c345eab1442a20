"""A card on file and top-ups through Stripe Checkout, automatic top-up off-session, disputes, voids
and credit notes in Stripe: the official SDK against localstripe and our fake (stripe_server.py)."""

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail

from accounts.choices import Role
from billing.choices import InvoiceStatus, LedgerKind, PaymentTerms, TopUpStatus
from billing.models import BillingAccount, Invoice, LedgerEntry, TopUp
from billing.services.invoicing import credit_note_create, invoice_void, month_close
from billing.services.payments import auto_top_up, card_setup_start, top_up_start
from tests.billing.factories import make_lease
from tests.billing.helpers import deliver
from tests.factories import MembershipFactory, OrganizationFactory
from tests.races import errors_of, race

MARCH = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def dana(db):
    organization = OrganizationFactory.create(name="Tiny Labs", slug="tiny-labs", terms=PaymentTerms.PREPAID)
    return MembershipFactory.create(
        user__email="dana@tiny.example", organization=organization, role=Role.OWNER
    ).user


def org_of(user):
    return user.memberships.get().organization


def session_of(url: str, stripe) -> str:
    return urlsplit(url).path.rsplit("/", 1)[-1]


def completed(session: dict) -> dict:
    return {
        "id": f"evt_{time.time_ns()}",
        "object": "event",
        "type": "checkout.session.completed",
        "created": int(time.time()),
        "data": {"object": {"id": session["id"], "object": "checkout.session"}},
    }


def balance(organization) -> Decimal:
    account = BillingAccount.objects.filter(pk=organization.pk).first()
    return account.balance if account else Decimal("0.00")


def saved_card(dana, stripe, client, card: str = "4242424242424242") -> None:
    url = card_setup_start(actor=dana, organization=org_of(dana))
    session = stripe.complete(session_of(url, stripe), card=card)
    assert deliver(client, completed(session)).json() == {"status": "processed"}


def test_adding_a_card_goes_through_checkout_in_setup_mode(dana, stripe, client) -> None:
    url = card_setup_start(actor=dana, organization=org_of(dana))
    session = stripe.sessions[session_of(url, stripe)]
    assert url.startswith(stripe.url) and session["mode"] == "setup"
    stripe.complete(session["id"])
    assert deliver(client, completed(session)).json() == {"status": "processed"}
    account = BillingAccount.objects.get(pk=org_of(dana).pk)
    assert (account.card_last4, account.has_card) == ("4242", True)
    # A first card turns on automatic top-up with the defaults, which the billing page shows.
    assert (account.auto_top_up_threshold, account.auto_top_up_amount) == (Decimal(25), Decimal(100))


def test_a_top_up_is_credited_once_however_it_is_reported(dana, stripe, client) -> None:
    url = top_up_start(actor=dana, organization=org_of(dana), amount="100")
    session = stripe.complete(session_of(url, stripe))
    assert stripe.sessions[session["id"]]["amount_total"] == 10000
    # The owner comes back first: the page reads the session from Stripe and credits it.
    client.force_login(dana)
    back = client.get(f"/billing/?stripe=paid&session={session['id']}")
    assert back.status_code == 200 and "$100.00" in back.content.decode()
    assert deliver(client, completed(session)).json() == {"status": "processed"}
    event = completed(session)
    assert deliver(client, event).json() == {"status": "processed"}
    assert deliver(client, event).json() == {"status": "duplicate"}
    assert balance(org_of(dana)) == Decimal("100.00")
    assert TopUp.objects.get().status == TopUpStatus.SUCCEEDED
    assert LedgerEntry.objects.filter(kind=LedgerKind.TOP_UP).count() == 1


def test_a_session_of_another_organization_is_not_credited_to_mine(dana, charlie, stripe, client) -> None:
    url = top_up_start(actor=charlie, organization=org_of(charlie), amount="50")
    session = stripe.complete(session_of(url, stripe))
    client.force_login(dana)
    client.get(f"/billing/?stripe=paid&session={session['id']}")
    assert balance(org_of(dana)) == Decimal("0.00")


def test_automatic_top_up_charges_the_saved_card_off_session(dana, stripe, client) -> None:
    saved_card(dana, stripe, client)
    attempt = auto_top_up(organization_id=org_of(dana).pk)
    assert attempt.status == TopUpStatus.SUCCEEDED and balance(org_of(dana)) == Decimal("100.00")
    assert ("/v1/payment_intents", f"vp-auto-top-up-{attempt.public_id}") in stripe.idempotency_keys


def test_a_declined_automatic_top_up_emails_the_owners_and_stops_after_three(
    dana, stripe, client, django_capture_on_commit_callbacks
) -> None:
    saved_card(dana, stripe, client, card="4000000000000341")  # attaches, then declines every charge
    with django_capture_on_commit_callbacks(execute=True):
        attempts = [auto_top_up(organization_id=org_of(dana).pk) for _ in range(4)]
    assert [a.status if a else None for a in attempts] == [TopUpStatus.FAILED] * 3 + [None]
    assert balance(org_of(dana)) == Decimal("0.00")
    declined = [m for m in mail.outbox if "declined" in m.subject]
    assert len(declined) == 3 and declined[0].to == ["dana@tiny.example"]
    assert "now off" in declined[-1].body


def test_a_dispute_withdraws_the_money_suspends_and_alerts_staff(
    dana, stripe, client, django_capture_on_commit_callbacks
) -> None:
    url = top_up_start(actor=dana, organization=org_of(dana), amount="100")
    session = stripe.complete(session_of(url, stripe))
    deliver(client, completed(session))
    intent = stripe.sessions[session["id"]]["payment_intent"]
    from localstripe import resources

    charge = resources.PaymentIntent._api_retrieve(intent).latest_charge.id
    dispute = stripe.dispute(charge)
    event = {
        "id": "evt_dispute_1",
        "object": "event",
        "type": "charge.dispute.created",
        "created": int(time.time()),
        "data": {"object": {"id": dispute["id"], "object": "dispute"}},
    }
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, event).json() == {"status": "processed"}
    account = BillingAccount.objects.get(pk=org_of(dana).pk)
    assert account.balance == Decimal("0.00") and account.suspended_at is not None
    assert any("dispute" in m.subject and m.to == ["ops@voltpark.example"] for m in mail.outbox)


def charge_of_session(stripe, session: dict) -> str:
    from localstripe import resources

    intent = stripe.sessions[session["id"]]["payment_intent"]
    return resources.PaymentIntent._api_retrieve(intent).latest_charge.id


def charge_event(kind: str, obj_id: str | None, obj: str) -> dict:
    """An event of `kind` about the Stripe object `obj_id` (re-read from Stripe when applied)."""
    return {
        "id": f"evt_{time.time_ns()}",
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": {"id": obj_id, "object": obj}},
    }


def test_a_refund_in_stripe_leaves_the_balance_once_however_often_it_is_reported(
    dana, stripe, client
) -> None:
    from billing.services.stripe_gateway import stripe_client

    url = top_up_start(actor=dana, organization=org_of(dana), amount="100")
    session = stripe.complete(session_of(url, stripe))
    deliver(client, completed(session))
    charge = charge_of_session(stripe, session)
    # Finance refunds $30 of the payment in Stripe's dashboard; Stripe reports it, then again.
    stripe_client().v1.refunds.create({"charge": charge, "amount": 3000})
    for _ in range(2):
        assert deliver(client, charge_event("charge.refunded", charge, "charge")).json() == {
            "status": "processed"
        }
    assert balance(org_of(dana)) == Decimal("70.00")
    refund = LedgerEntry.objects.get(kind=LedgerKind.REFUND)
    assert (refund.amount, refund.balance_after) == (Decimal("-30.00"), Decimal("70.00"))
    # A second refund of the same charge leaves the balance too, and only it.
    stripe_client().v1.refunds.create({"charge": charge, "amount": 1000})
    deliver(client, charge_event("charge.refunded", charge, "charge"))
    assert balance(org_of(dana)) == Decimal("60.00")
    assert LedgerEntry.objects.filter(kind=LedgerKind.REFUND).count() == 2


def test_an_invoice_on_terms_is_charged_to_the_card_on_file(
    acme, alice, stripe, client, django_capture_on_commit_callbacks
) -> None:
    saved_card(alice, stripe, client)
    make_lease(organization=acme, start=MARCH, end=MARCH + timedelta(hours=10), gpus=8, price="1.9900")
    with django_capture_on_commit_callbacks(execute=True):
        month_close(period_start=MARCH, now=datetime(2026, 4, 2, tzinfo=UTC))
    invoice = Invoice.objects.get()
    remote = stripe.invoices[invoice.stripe_invoice_id]
    assert (remote["status"], remote["amount_paid"]) == ("paid", int(invoice.total * 100))
    assert (f"/v1/invoices/{invoice.stripe_invoice_id}/pay", f"vp-invoice-{invoice.public_id}-pay") in (
        stripe.idempotency_keys
    )
    paid = charge_event("invoice.paid", invoice.stripe_invoice_id, "invoice")
    assert deliver(client, paid).json() == {"status": "processed"}
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.PAID
    assert LedgerEntry.objects.get(kind=LedgerKind.INVOICE_PAYMENT).amount == invoice.total


def test_a_failed_charge_of_an_invoice_on_terms_emails_the_owners_and_leaves_it_payable(
    acme, alice, stripe, client, django_capture_on_commit_callbacks
) -> None:
    saved_card(alice, stripe, client, card="4000000000000341")  # attaches, then declines every charge
    make_lease(organization=acme, start=MARCH, end=MARCH + timedelta(hours=10), gpus=8, price="1.9900")
    with django_capture_on_commit_callbacks(execute=True):
        month_close(period_start=MARCH, now=datetime(2026, 4, 2, tzinfo=UTC))
    invoice = Invoice.objects.get()
    assert stripe.invoices[invoice.stripe_invoice_id]["status"] == "open"  # the card was declined
    failed = charge_event("invoice.payment_failed", invoice.stripe_invoice_id, "invoice")
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, failed).json() == {"status": "processed"}
    [email] = [m for m in mail.outbox if "failed" in m.subject]
    assert email.subject == f"Voltpark: payment of invoice {invoice.number} failed"
    assert email.to[0] == "alice@acme.example" and "/billing/" in email.body
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.OPEN
    assert not LedgerEntry.objects.filter(kind=LedgerKind.INVOICE_PAYMENT).exists()
    # The owner then pays on Stripe's hosted page: paid once, and the payment is in the ledger.
    stripe.pay(invoice.stripe_invoice_id)
    paid = charge_event("invoice.paid", invoice.stripe_invoice_id, "invoice")
    assert deliver(client, paid).json() == {"status": "processed"}
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.PAID
    assert LedgerEntry.objects.get(kind=LedgerKind.INVOICE_PAYMENT).amount == invoice.total


def test_a_dispute_won_gives_the_money_back_once(dana, stripe, client) -> None:
    url = top_up_start(actor=dana, organization=org_of(dana), amount="100")
    session = stripe.complete(session_of(url, stripe))
    deliver(client, completed(session))
    dispute = stripe.dispute(charge_of_session(stripe, session))
    deliver(client, charge_event("charge.dispute.created", dispute["id"], "dispute"))
    assert balance(org_of(dana)) == Decimal("0.00")
    stripe.dispute(dispute["charge"], status="won")
    for _ in range(2):  # Stripe may say so twice
        deliver(client, charge_event("charge.dispute.closed", dispute["id"], "dispute"))
    assert balance(org_of(dana)) == Decimal("100.00")
    kinds = list(LedgerEntry.objects.order_by("sequence").values_list("kind", flat=True))
    assert kinds == [LedgerKind.TOP_UP, LedgerKind.DISPUTE, LedgerKind.DISPUTE_WON]
    # Staff decide when bookings resume: winning the dispute does not lift the suspension by itself.
    assert BillingAccount.objects.get(pk=org_of(dana).pk).suspended_at is not None


@pytest.fixture
def invoiced(acme, stripe, django_capture_on_commit_callbacks) -> Invoice:
    make_lease(organization=acme, start=MARCH, end=MARCH + timedelta(hours=10), gpus=8, price="1.9900")
    with django_capture_on_commit_callbacks(execute=True):
        month_close(period_start=MARCH, now=datetime(2026, 4, 2, tzinfo=UTC))
    return Invoice.objects.get()


def test_voiding_an_invoice_voids_it_in_stripe(
    invoiced, stripe, frank, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        invoice_void(actor=frank, invoice=invoiced, reason="Billed by mistake")
    assert stripe.invoices[invoiced.stripe_invoice_id]["status"] == "void"
    assert Invoice.objects.get(pk=invoiced.pk).status == InvoiceStatus.VOID


def test_a_credit_note_becomes_a_stripe_credit_note(
    invoiced, stripe, frank, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        note = credit_note_create(actor=frank, invoice=invoiced, amount=Decimal("20.00"), reason="Node slow")
    note.refresh_from_db()
    remote = stripe.credit_notes[note.stripe_credit_note_id]
    assert (remote["invoice"], remote["amount"]) == (invoiced.stripe_invoice_id, 2000)
    assert stripe.invoices[invoiced.stripe_invoice_id]["amount_due"] == int(invoiced.total * 100) - 2000


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_webhook_delivered_five_times_at_once_has_one_effect(stripe) -> None:
    from django.test import Client

    organization = OrganizationFactory.create(terms=PaymentTerms.PREPAID)
    owner = MembershipFactory.create(organization=organization, role=Role.OWNER).user
    url = top_up_start(actor=owner, organization=organization, amount="100")
    session = stripe.complete(session_of(url, stripe))
    event = completed(session)
    results = race([lambda: deliver(Client(), event).json()["status"] for _ in range(5)])
    assert errors_of(results) == []
    assert sorted(results) == ["duplicate"] * 4 + ["processed"]
    assert balance(organization) == Decimal("100.00")


def test_the_checkout_return_address_names_the_session(dana, stripe) -> None:
    url = top_up_start(actor=dana, organization=org_of(dana), amount="100")
    session = stripe.sessions[session_of(url, stripe)]
    query = parse_qs(urlsplit(session["success_url"]).query)
    assert query == {"stripe": ["paid"], "session": ["{CHECKOUT_SESSION_ID}"]}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_automatic_top_up_top_ups_debits_and_webhooks_racing_lose_no_cent_and_double_nothing(stripe) -> None:
    from django.test import Client

    from billing.services.debits import usage_debit_month
    from billing.services.top_ups import top_up_record

    organization = OrganizationFactory.create(terms=PaymentTerms.PREPAID)
    owner = MembershipFactory.create(organization=organization, role=Role.OWNER).user
    saved_card(owner, stripe, Client())  # automatic top-up on: $100 below $25
    session = stripe.complete(
        session_of(top_up_start(actor=owner, organization=organization, amount="50"), stripe)
    )
    make_lease(organization=organization, start=MARCH, end=MARCH + timedelta(hours=5), gpus=8, price="2.5000")
    one_event = completed(session)
    calls = [
        *(lambda: auto_top_up(organization_id=organization.pk) for _ in range(3)),
        *(lambda: deliver(Client(), one_event).json()["status"] for _ in range(5)),
        *(lambda: deliver(Client(), completed(session)).json()["status"] for _ in range(2)),
        *(
            lambda i=i: top_up_record(
                organization=organization, amount=Decimal("10.00"), external_id=f"bank_{i}", description="t"
            )
            for i in range(3)
        ),
        *(lambda: usage_debit_month(period_start=MARCH, until=MARCH + timedelta(hours=5)) for _ in range(2)),
    ]
    results = race(calls)
    assert errors_of(results) == []
    assert sorted(results[3:8]) == ["duplicate"] * 4 + ["processed"]
    [attempt] = TopUp.objects.filter(organization=organization, method="auto")
    assert attempt.status == TopUpStatus.SUCCEEDED
    # $100 automatic + $50 by Checkout + 3 × $10 transfers − 8 GPUs × 5 h × $2.50.
    expected = Decimal("100.00") + Decimal("50.00") + Decimal("30.00") - Decimal("100.00")
    assert balance(organization) == expected

    # Stripe then reports the automatic top-up's payment, in five events at once: nothing more.
    intent_event = charge_event("payment_intent.succeeded", attempt.stripe_payment_intent, "payment_intent")
    more = race(
        [lambda i=i: deliver(Client(), {**intent_event, "id": f"evt_pi_{i}"}).json() for i in range(5)]
    )
    assert more == [{"status": "processed"}] * 5 and balance(organization) == expected
    entries = list(LedgerEntry.objects.filter(organization=organization).order_by("sequence"))
    assert [e.sequence for e in entries] == list(range(1, len(entries) + 1))
    assert sum(e.amount for e in entries) == expected == entries[-1].balance_after
    assert [e.kind for e in entries].count(LedgerKind.TOP_UP) == 5
