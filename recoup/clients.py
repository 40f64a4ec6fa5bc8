"""The client address of a request."""

import ipaddress

from django.conf import settings


def client_address(request) -> str:
    """Return the client's IP address.

    Behind ``NUM_PROXIES`` trusted proxies the address is taken from
    X-Forwarded-For, counted from the right, the way DRF's throttles count it.
    """
    remote_addr = request.META.get("REMOTE_ADDR", "")
    proxies = settings.REST_FRAMEWORK.get("NUM_PROXIES")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if not proxies or not forwarded:
        return remote_addr
    addresses = [part.strip() for part in forwarded.split(",") if part.strip()]
    if not addresses:
        return remote_addr
    candidate = addresses[-min(proxies, len(addresses))]
    # The client may write anything into the header; keep only an address.
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote_addr
