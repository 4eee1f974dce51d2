"""Secrets in URIs: what is recorded or printed never holds a password or a token."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
SECRET_PARAMS = re.compile(r"pass|secret|token|key|auth|credential|signature", re.IGNORECASE)


def mask_uri(uri: str) -> str:
    """`scheme://user:pw@host/db?token=t` -> `scheme://user:***@host/db?token=***`; other URIs unchanged."""
    if "://" not in uri:
        return uri
    parts = urlsplit(uri)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if SECRET_PARAMS.search(k) else v) for k, v in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return uri  # nothing secret; urlunsplit would also rewrite sqlite:////abs paths
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def is_masked(uri: str) -> bool:
    return MASK in uri


def mask_words(words: list[str] | tuple[str, ...]) -> list[str]:
    """An argv with every URI-looking word masked (`--tracking-uri postgresql://u:pw@h/db`)."""
    return [mask_uri(w) if "://" in w else w for w in words]
