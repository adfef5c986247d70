"""Go's net/url, in bytes as Go works: `parse` (url.Parse, and url.ParseRequestURI with
`via_request`), `GoURL` (the fields and methods Kubernetes' URL library reads) and `parse_url`
(Kubernetes' `url()`: what ParseRequestURI accepts, valued as Parse gives it).

One port, for the CEL library (`isURL`, `url()`, `format.uri()`, in `cel`) and a CRD's
`format: uri` (`crd_formats.is_uri`, go-openapi's `IsRequestURI`, which calls ParseRequestURI).

Left out: Go 1.26's strict colons in a host. Go 1.26 refuses a host with a colon before its
port's (`http://::1/`, `http://a:b:80/`) by default (GODEBUG urlstrictcolons, which
internal/godebugs marks changed in 1.26); earlier Go, and a program whose go.mod asks for
earlier defaults (Kubernetes' `godebug default=go1.N`), takes the last colon as the port's.
Which one an API server has depends on how it was built, so such a host raises
`AmbiguousHostError`: "could not evaluate" in CEL (a policy's verdict could turn on it), a
valid `uri` in a CRD's schema (the lax answer; `crd_formats.is_uri` says why).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from trustgate.policy._gostrconv import go_quote

__all__ = [
    "QUERY",
    "AmbiguousHostError",
    "GoURL",
    "URLError",
    "parse",
    "parse_request_uri",
    "parse_url",
    "unescape",
]


class URLError(ValueError):
    """Go's url parser refuses the text (the message is the *url.Error's inner error)."""


class AmbiguousHostError(URLError):
    """Go's url parser accepts or refuses the text depending on its version and GODEBUG."""


_HOST, _ZONE, _PATH, _USER, QUERY, _FRAGMENT = "host", "zone", "path", "user", "query", "fragment"
_ALNUM = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_USERINFO_OK = _ALNUM | frozenset(b"-._:~!$&'()*+,;=%@")  # validUserinfo, ASCII runes only


def _should_escape(c: int, mode: str) -> bool:
    """Go's shouldEscape(c, mode)."""
    if c in _ALNUM:
        return False
    if mode in (_HOST, _ZONE) and c in b"!$&'()*+,;=:[]<>\"":
        return False
    if c in b"-_.~":
        return False
    if c in b"$&+,/:;=?@":
        if mode == _PATH:
            return c == ord("?")
        if mode == _USER:
            return c in b"@/?:"
        if mode == QUERY:
            return True
        if mode == _FRAGMENT:
            return False
    return not (mode == _FRAGMENT and c in b"!()*")


def unescape(s: bytes, mode: str) -> bytes:
    """Go's unescape(s, mode): every % followed by two hex digits (in a host, only for bytes
    beyond ASCII, or %25), no ASCII a host may not hold; `+` is a space in a query."""
    i = 0
    while i < len(s):
        c = s[i]
        if c == ord("%"):
            if i + 2 >= len(s) or s[i + 1] not in _HEX or s[i + 2] not in _HEX:
                raise URLError(f"invalid URL escape {go_quote(s[i : i + 3].decode(errors='replace'))}")
            value = int(s[i + 1 : i + 3], 16)
            if mode == _HOST and value < 0x80 and s[i : i + 3] != b"%25":
                raise URLError(f"invalid URL escape {go_quote(s[i : i + 3].decode())}")
            if mode == _ZONE and s[i : i + 3] != b"%25" and value != 0x20 and _should_escape(value, _HOST):
                raise URLError(f"invalid URL escape {go_quote(s[i : i + 3].decode())}")
            i += 3
        else:
            if mode in (_HOST, _ZONE) and c < 0x80 and _should_escape(c, mode):
                raise URLError(f"invalid character {go_quote(chr(c))} in host name")
            i += 1
    out = bytearray()
    i = 0
    while i < len(s):
        if s[i] == ord("%"):
            out.append(int(s[i + 1 : i + 3], 16))
            i += 3
            continue
        out.append(0x20 if s[i] == ord("+") and mode == QUERY else s[i])
        i += 1
    return bytes(out)


def _escape(s: bytes, mode: str) -> bytes:
    out = bytearray()
    for c in s:
        if c == 0x20 and mode == QUERY:
            out.append(ord("+"))
        elif _should_escape(c, mode):
            out += b"%%%02X" % c
        else:
            out.append(c)
    return bytes(out)


def _valid_port(colon_port: bytes) -> bool:
    return colon_port == b"" or (colon_port[:1] == b":" and all(0x30 <= c <= 0x39 for c in colon_port[1:]))


def _parse_host(host: bytes) -> bytes:
    """Go's parseHost: host[:port], unescaped (a bracketed IPv6 zone may be %-escaped)."""
    if host.startswith(b"["):
        i = host.rfind(b"]")
        if i < 0:
            raise URLError("missing ']' in host")
        if not _valid_port(host[i + 1 :]):
            raise URLError(f"invalid port {go_quote(host[i + 1 :].decode(errors='replace'))} after host")
        zone = host[:i].find(b"%25")
        if zone >= 0:
            return unescape(host[:zone], _HOST) + unescape(host[zone:i], _ZONE) + unescape(host[i:], _HOST)
    else:
        i = host.rfind(b":")
        if i != -1 and not _valid_port(host[i:]):
            raise URLError(f"invalid port {go_quote(host[i:].decode(errors='replace'))} after host")
        if i != -1 and b":" in host[:i]:
            # Go 1.26's default (urlstrictcolons=1) refuses this; earlier Go, and a module
            # whose go.mod asks for earlier defaults, takes the last colon as the port's.
            raise AmbiguousHostError(
                f"the host {go_quote(host.decode(errors='replace'))} holds a colon before its port's, "
                "which Go's url parser accepts or refuses depending on the Go version and GODEBUG "
                "(urlstrictcolons) the API server is built with"
            )
    return unescape(host, _HOST)


@dataclass(frozen=True, slots=True)
class GoURL:
    """The fields of Go's url.URL that Kubernetes' library reads, as bytes."""

    scheme: bytes = b""
    opaque: bytes = b""
    user: tuple[bytes, bytes | None] | None = None  # username, password
    host: bytes = b""
    path: bytes = b""
    raw_path: bytes = b""
    force_query: bool = False
    raw_query: bytes = b""
    fragment: bytes = b""
    raw_fragment: bytes = b""

    def escaped_path(self) -> bytes:
        """Go's URL.EscapedPath."""
        if self.raw_path and _valid_encoded(self.raw_path, _PATH):
            try:
                if unescape(self.raw_path, _PATH) == self.path:
                    return self.raw_path
            except URLError:
                pass
        if self.path == b"*":
            return b"*"
        return _escape(self.path, _PATH)

    def escaped_fragment(self) -> bytes:
        if self.raw_fragment and _valid_encoded(self.raw_fragment, _FRAGMENT):
            try:
                if unescape(self.raw_fragment, _FRAGMENT) == self.fragment:
                    return self.raw_fragment
            except URLError:
                pass
        return _escape(self.fragment, _FRAGMENT)

    def split_host_port(self) -> tuple[bytes, bytes]:
        """Go's splitHostPort of Host: (Hostname(), Port())."""
        host, port = self.host, b""
        colon = host.rfind(b":")
        if colon != -1 and _valid_port(host[colon:]):
            host, port = host[:colon], host[colon + 1 :]
        if host.startswith(b"[") and host.endswith(b"]"):
            host = host[1:-1]
        return host, port

    def string(self) -> bytes:
        """Go's URL.String(), which Kubernetes' URL.Equal compares."""
        out = bytearray()
        if self.scheme:
            out += self.scheme + b":"
        if self.opaque:
            out += self.opaque
        else:
            if self.scheme or self.host or self.user is not None:
                if self.host or self.path or self.user is not None:
                    out += b"//"
                if self.user is not None:
                    out += _escape(self.user[0], _USER)
                    if self.user[1] is not None:
                        out += b":" + _escape(self.user[1], _USER)
                    out += b"@"
                if self.host:
                    out += _escape(self.host, _HOST)
            path = self.escaped_path()
            if path and path[:1] != b"/" and self.host:
                out += b"/"
            if not out and b":" in path.split(b"/", 1)[0]:
                out += b"./"
            out += path
        if self.force_query or self.raw_query:
            out += b"?" + self.raw_query
        if self.fragment:
            out += b"#" + self.escaped_fragment()
        return bytes(out)


def _valid_encoded(s: bytes, mode: str) -> bool:
    return all(c in b"!$&'()*+,;=:@[]%" or not _should_escape(c, mode) for c in s)


def parse(raw: bytes, via_request: bool) -> GoURL:
    """Go's parse(rawURL, viaRequest)."""
    if any(c < 0x20 or c == 0x7F for c in raw):
        raise URLError("net/url: invalid control character in URL")
    if raw == b"" and via_request:
        raise URLError("empty url")
    if raw == b"*":
        return GoURL(path=b"*")
    scheme, rest = b"", raw
    for i, c in enumerate(raw):
        if chr(c).isascii() and chr(c).isalpha():
            continue
        if c in b"0123456789+-.":
            if i == 0:
                break
            continue
        if c == ord(":"):
            if i == 0:
                raise URLError("missing protocol scheme")
            scheme, rest = raw[:i].lower(), raw[i + 1 :]
        break
    force_query, raw_query = False, b""
    if rest.endswith(b"?") and rest.count(b"?") == 1:
        force_query, rest = True, rest[:-1]
    else:
        rest, _, raw_query = rest.partition(b"?")
    if not rest.startswith(b"/"):
        if scheme:  # a rootless path is opaque
            return GoURL(scheme=scheme, opaque=rest, force_query=force_query, raw_query=raw_query)
        if via_request:
            raise URLError("invalid URI for request")
        if b":" in rest.split(b"/", 1)[0]:
            raise URLError("first path segment in URL cannot contain colon")
    user: tuple[bytes, bytes | None] | None = None
    host = b""
    if (scheme or (not via_request and not rest.startswith(b"///"))) and rest.startswith(b"//"):
        authority, slash, tail = rest[2:].partition(b"/")
        rest = slash + tail
        at = authority.rfind(b"@")
        host = _parse_host(authority[at + 1 :])
        if at >= 0:
            userinfo = authority[:at]
            if not all(c in _USERINFO_OK for c in userinfo):
                raise URLError("net/url: invalid userinfo")
            name, colon, password = userinfo.partition(b":")
            user = (unescape(name, _USER), unescape(password, _USER) if colon else None)
    path = unescape(rest, _PATH)
    raw_path = b"" if _escape(path, _PATH) == rest else rest
    return GoURL(scheme, b"", user, host, path, raw_path, force_query, raw_query)


def parse_request_uri(text: str) -> GoURL:
    """url.ParseRequestURI(text).

    Raises:
        URLError: it refuses the text (AmbiguousHostError where Go's version decides).
    """
    return parse(text.encode("utf-8", "surrogatepass"), True)


def parse_url(text: str) -> GoURL:
    """Kubernetes' url(): what url.ParseRequestURI accepts, valued as url.Parse gives it.

    Raises:
        URLError: ParseRequestURI or Parse refuses the text (AmbiguousHostError where Go's
            version decides).
    """
    raw = text.encode("utf-8", "surrogatepass")
    parse(raw, True)
    before, hash_sign, fragment = raw.partition(b"#")
    parsed = parse(before, False)
    if hash_sign and fragment:
        unescaped = unescape(fragment, _FRAGMENT)
        raw_fragment = b"" if _escape(unescaped, _FRAGMENT) == fragment else fragment
        parsed = dataclasses.replace(parsed, fragment=unescaped, raw_fragment=raw_fragment)
    return parsed
