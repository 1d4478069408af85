"""Client addresses: who is calling, seen through trusted reverse proxies, and IP allow-lists.

One function, `client_ip`, answers "which IP is this request from" for every part of the app
(login throttling, visitor hashes, the postback allow-list); the configured lists are parsed once
per distinct setting.
"""
import functools
import ipaddress


class NetworkListError(ValueError):
    """A configured IP/CIDR list contains something that is not an address or network."""


@functools.lru_cache(maxsize=16)
def parse_networks(text):
    """'10.0.0.1, 192.168.0.0/16' -> (IPv4Network, ...). Empty text -> ()."""
    networks = []
    for item in (text or "").replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise NetworkListError(f"{item!r} is not an IP address or CIDR network") from None
    return tuple(networks)


def ip_in(address, networks):
    """True when the textual address belongs to one of networks (False for garbage)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except (ValueError, AttributeError):
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks if network.version == ip.version)


def client_ip(config, remote_addr, forwarded_for):
    """The caller's IP: the socket's peer, or when that peer is a trusted proxy
    (POPUP_TRUSTED_PROXIES), the right-most X-Forwarded-For entry that is not itself a trusted
    proxy (entries further left are client-supplied and can be forged)."""
    remote_addr = remote_addr or ""
    trusted = parse_networks(config.get("TRUSTED_PROXIES"))
    if not trusted or not forwarded_for or not ip_in(remote_addr, trusted):
        return remote_addr
    for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
        if not ip_in(hop, trusted):
            return hop if _is_ip(hop) else remote_addr
    return remote_addr


def check_settings(config):
    """Raise NetworkListError at start-up for a malformed POPUP_TRUSTED_PROXIES or
    POPUP_POSTBACK_ALLOWED_IPS, instead of on the first request."""
    for key in ("TRUSTED_PROXIES", "POSTBACK_ALLOWED_IPS"):
        parse_networks(config.get(key))


def _is_ip(text):
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False
