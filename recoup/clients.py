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
    address = _parse_address(candidate)
    return remote_addr if address is None else str(address)


def _parse_address(text: str):
    """Return the IP address in ``text``, which may carry a port, as some
    proxies write it (``192.0.2.1:4711``, ``[2001:db8::1]:4711``), or None.
    An IPv4-mapped IPv6 address becomes its IPv4 address, and an IPv6 zone id
    is dropped."""
    if text.startswith("["):
        # [IPv6] or [IPv6]:port
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not (rest[0] == ":" and _is_port(rest[1:]))):
            return None
    elif text.count(":") == 1:
        # IPv4:port
        host, _, port = text.partition(":")
        if not _is_port(port):
            return None
    else:
        # IPv4, or IPv6 without brackets
        host = text
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return address.ipv4_mapped
        if address.scope_id:
            # A zone id (fe80::1%eth0) names an interface of the proxy's host,
            # not the client, and may be of any length.
            return ipaddress.IPv6Address(host.partition("%")[0])
    return address


def _is_port(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 5
