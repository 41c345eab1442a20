"""The startup pages keep the content security policy: no inline script or style, nothing from elsewhere."""

import pytest

from tests.clusters.helpers import active_lease
from tests.voltpark.helpers import assert_no_inline_code, assert_strict


@pytest.mark.parametrize(
    "page", ["/book/", "/leases/", "LEASE/", "LEASE/release/", "/billing/", "/organization/early-stage/"]
)
def test_each_startup_page_carries_the_policy_and_no_inline_code(
    client_as, seeded_fleet, acme, alice, page
) -> None:
    if page.startswith("LEASE"):
        lease = active_lease(seeded_fleet, organization=acme, booked_by=alice)
        page = page.replace("LEASE", f"/leases/{lease.public_id}")
    response = client_as("alice").get(page)
    assert response.status_code == 200
    assert_strict(response)
    assert_no_inline_code(response.content.decode())
