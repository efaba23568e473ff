"""The one error type of the test-guest builder."""
from __future__ import annotations

from smartos_lab.errors import HostError


class GuestBuildError(HostError):
    """The Linux test guest could not be built (apt, dpkg-deb, dkms, a missing file)."""
