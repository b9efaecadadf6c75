"""Items: the canonical forms two nodes must agree on byte for byte before PSI can match.

Why hand-written: matching is exact on bytes, so every spelling of one thing must collapse to
one item, and no library canonicalises STIX observables this way. Each item is a ``kind`` and
a canonical ``value``; the bytes hashed into the group are ``kind || 0x00 || value`` so kinds
never collide (the domain ``1.2.3.4`` is not the address ``1.2.3.4``).

Rules (also in docs/deconfliction.md):

* IPv4/IPv6 addresses: the ``ipaddress`` canonical text (IPv6 compressed, lower case;
  IPv4-mapped IPv6 becomes IPv4). CIDR blocks: a block of at most 256 addresses (IPv4 /24 or
  longer, IPv6 /120 or longer) expands to its addresses, so an address on one side matches a
  small block containing it on the other; a larger block is one ``ipv4-net``/``ipv6-net``
  item (network address/prefix) that matches only the same block, because expanding it would
  exhaust the budget and let a partner probe whole ranges.
* domain names: lower case, trailing dot removed, IDNA (punycode) per label.
* URLs: scheme and host lower case, default port dropped, empty path becomes ``/``, fragment
  dropped; path and query kept byte for byte.
* email addresses: NFC, then the whole address lower case.
* file hashes: ``file:<ALGO>`` with the STIX algorithm name, value lower-case hex of the
  right length.
* names (threat actors, persons, organisations, operations): NFKC, case-folded, whitespace
  collapsed.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from detente.deconflict.errors import EncodingError

__all__ = ["NAME_KINDS", "Item", "from_pattern", "from_sco", "name", "observable"]

_SMALL_BLOCK = 256
NAME_KINDS = frozenset(
    {"threat-actor", "intrusion-set", "campaign", "person", "organization", "operation"}
)
_HASH_LENGTHS = {"MD5": 32, "SHA-1": 40, "SHA-256": 64, "SHA-512": 128, "SHA3-256": 64}
_HASH_ALIASES = {"SHA1": "SHA-1", "SHA256": "SHA-256", "SHA512": "SHA-512"}
_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}


@dataclass(frozen=True, slots=True)
class Item:
    """One canonical item. Build items with the encoders below, not by hand."""

    kind: str
    value: str

    def encoded(self) -> bytes:
        return self.kind.encode() + b"\x00" + self.value.encode()


def _ip(kind: str, text: str) -> tuple[Item, ...]:
    try:
        if "/" not in text:
            addr = ipaddress.ip_address(text.strip())
            if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
                addr = addr.ipv4_mapped
            return (Item(f"ipv{addr.version}-addr", str(addr)),)
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise EncodingError(f"{kind}: {text!r} is not an IP address or CIDR block") from None
    if net.num_addresses <= _SMALL_BLOCK:
        return tuple(Item(f"ipv{net.version}-addr", str(a)) for a in net)
    return (Item(f"ipv{net.version}-net", str(net)),)


def _domain(text: str) -> str:
    host = text.strip().rstrip(".").lower()
    if not host or len(host) > 253:
        raise EncodingError(f"domain-name: {text!r} is empty or too long")
    try:
        return ".".join(label.encode("idna").decode("ascii") for label in host.split("."))
    except UnicodeError:
        raise EncodingError(f"domain-name: {text!r} is not a valid IDNA name") from None


def _url(text: str) -> str:
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        raise EncodingError(f"url: {text!r} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if not scheme or not parts.hostname:
        raise EncodingError(f"url: {text!r} has no scheme or host")
    host = _domain(parts.hostname) if not parts.hostname.startswith("[") else parts.hostname
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}" if userinfo else host
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def _email(text: str) -> str:
    addr = unicodedata.normalize("NFC", text.strip()).lower()
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain:
        raise EncodingError(f"email-addr: {text!r} is not local@domain")
    return f"{local}@{_domain(domain)}"


def _file_hash(algorithm: str, value: str) -> Item:
    algo = algorithm.strip().strip("'\"").upper()
    algo = _HASH_ALIASES.get(algo, algo)
    digest = value.strip().lower()
    want = _HASH_LENGTHS.get(algo)
    if want is None:
        raise EncodingError(f"file hash: unsupported algorithm {algorithm!r}")
    if len(digest) != want or re.fullmatch(r"[0-9a-f]+", digest) is None:
        raise EncodingError(f"file hash: {value!r} is not {want} hex digits of {algo}")
    return Item(f"file:{algo}", digest)


def observable(kind: str, value: str) -> tuple[Item, ...]:
    """Canonical items for one observable value (``kind`` is the STIX SCO type)."""
    if not isinstance(value, str):
        raise EncodingError(f"{kind}: value must be a string")
    if kind in ("ipv4-addr", "ipv6-addr"):
        return _ip(kind, value)
    if kind == "domain-name":
        return (Item(kind, _domain(value)),)
    if kind == "url":
        return (Item(kind, _url(value)),)
    if kind == "email-addr":
        return (Item(kind, _email(value)),)
    if kind.startswith("file:"):
        return (_file_hash(kind[5:], value),)
    raise EncodingError(f"unsupported observable kind {kind!r}")


def name(kind: str, text: str) -> Item:
    """A name item: NFKC-normalised, case-folded, whitespace collapsed."""
    if kind not in NAME_KINDS:
        raise EncodingError(f"unsupported name kind {kind!r}", hint=f"one of {sorted(NAME_KINDS)}")
    folded = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    if not folded:
        raise EncodingError(f"{kind}: empty name")
    return Item(kind, unicodedata.normalize("NFKC", folded))


def from_sco(sco: Mapping[str, object]) -> tuple[Item, ...]:
    """Items for a STIX 2.1 cyber-observable object (ip, domain, url, email, file hashes)."""
    kind = sco.get("type")
    if kind == "file":
        hashes = sco.get("hashes")
        if not isinstance(hashes, Mapping) or not hashes:
            raise EncodingError("file: no hashes to deconflict on")
        return tuple(_file_hash(str(a), str(v)) for a, v in sorted(hashes.items()))
    value = sco.get("value")
    if not isinstance(kind, str) or not isinstance(value, str):
        raise EncodingError("observable needs a string 'type' and 'value'")
    return observable(kind, value)


_COMPARISON = re.compile(
    r"""\s*([a-z0-9-]+):(value|hashes\.(?:'[^']+'|[A-Za-z0-9-]+))\s*=\s*'((?:[^'\\]|\\.)*)'\s*"""
)


def from_pattern(pattern: str) -> tuple[Item, ...]:
    """Items for a simple STIX pattern: equality comparisons joined by OR, one bracket each
    or inside one bracket. Anything richer is refused rather than half-understood."""
    body = pattern.strip()
    groups = [g.strip() for g in re.split(r"\]\s+OR\s+\[", body)]
    if not body.startswith("[") or not body.endswith("]"):
        raise EncodingError(f"pattern {pattern!r} is not a bracketed comparison")
    groups[0] = groups[0][1:]
    groups[-1] = groups[-1][:-1]
    out: list[Item] = []
    for group in groups:
        for comparison in re.split(r"\s+OR\s+", group):
            m = _COMPARISON.fullmatch(comparison)
            if m is None:
                raise EncodingError(f"pattern comparison {comparison!r} is not simple equality")
            kind, prop, raw = m.groups()
            if (kind == "file") == (prop == "value"):
                raise EncodingError(f"pattern property {kind}:{prop} is not deconflictable")
            value = raw.replace("\\'", "'").replace("\\\\", "\\")
            out.extend(observable(f"file:{prop[7:]}" if kind == "file" else kind, value))
    return tuple(dict.fromkeys(out))
