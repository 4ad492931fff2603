"""Fetching ``http(s)`` images without becoming a proxy into private networks (SSRF).

The host is resolved here and every address it resolves to must be global; the connection then
goes to that checked address (the host name only travels as ``Host`` and TLS SNI), so a DNS
answer cannot change between the check and the connect. Redirects are followed by hand, each
hop checked the same way. The body is streamed with size and time limits.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from glmserve.images.decode import MAX_BYTES, ImageError

log = logging.getLogger("glmserve.images")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    enabled: bool = False
    timeout_s: float = 10.0
    max_bytes: int = MAX_BYTES
    max_redirects: int = 3
    allow_hosts: frozenset[str] = field(default_factory=frozenset)  # trusted hosts or IPs, checked as is


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def resolve(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise ImageError(f"image host '{host}' does not resolve", param="image_url") from None
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


async def checked_address(url: str, policy: FetchPolicy) -> tuple[str, IPAddress]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImageError("image URLs must be http(s) URLs with a host", param="image_url")
    host = parts.hostname
    addresses = await resolve(host, parts.port or (443 if parts.scheme == "https" else 80))
    if host not in policy.allow_hosts and not all(is_public(a) for a in addresses):
        raise ImageError(f"image host '{host}' resolves to a non-public address; refused", param="image_url")
    return host, addresses[0]


def _pinned(url: str, address: IPAddress) -> str:
    parts = urlsplit(url)
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


def _loggable(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


async def fetch_image(client: httpx.AsyncClient, url: str, policy: FetchPolicy) -> bytes:
    """The image bytes at ``url``; any refusal or failure is a 400 naming the problem."""
    if not policy.enabled:
        raise ImageError("fetching image URLs is disabled; send the image as base64", param="image_url")
    deadline = time.monotonic() + policy.timeout_s
    for _ in range(policy.max_redirects + 1):
        host, address = await checked_address(url, policy)
        log.info("fetching image %s via %s", _loggable(url), address)
        try:
            async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                location = await _get(client, url, host, address, policy)
        except TimeoutError:
            raise ImageError("fetching the image timed out", param="image_url") from None
        except httpx.HTTPError as exc:
            raise ImageError(f"fetching the image failed: {type(exc).__name__}", param="image_url") from None
        if isinstance(location, bytes):
            return location
        url = urljoin(url, location)
    raise ImageError(
        f"more than {policy.max_redirects} redirects while fetching the image", param="image_url"
    )


async def _get(
    client: httpx.AsyncClient, url: str, host: str, address: IPAddress, policy: FetchPolicy
) -> bytes | str:
    """The body, or the next location for a redirect."""
    scheme_port = urlsplit(url).port
    headers = {"Host": host if scheme_port is None else f"{host}:{scheme_port}", "Accept": "image/*"}
    request = client.build_request("GET", _pinned(url, address), headers=headers)
    if urlsplit(url).scheme == "https":
        request.extensions["sni_hostname"] = host
    response = await client.send(request, stream=True, follow_redirects=False)
    try:
        if response.is_redirect:
            return response.headers.get("location", "")
        if response.status_code != 200:
            raise ImageError(f"the image URL answered HTTP {response.status_code}", param="image_url")
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if not kind.startswith("image/"):
            raise ImageError(
                f"the image URL served '{kind or 'no content type'}', not an image", param="image_url"
            )
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > policy.max_bytes:
                raise ImageError("the image at the URL is larger than 5 MB", param="image_url")
        return bytes(body)
    finally:
        await response.aclose()
