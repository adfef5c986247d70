"""Image references: `[registry[:port]/]repository[:tag][@digest]`.

Owns: parsing and validating references with the grammar of the distribution
project (`github.com/distribution/reference`), Docker Hub normalisation
(`nginx` -> `docker.io/library/nginx`), printing them back, and the globs
image rules and exceptions match names with. Leaves out:
talking to registries (client.py) and deciding whether a tag is acceptable
(policy).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, replace
from typing import Final

from trustgate.model import embedded_ipv4, names_registry, octal_note, relayed_ipv4_note
from trustgate.oci.errors import InvalidReference, InvalidReferenceError

__all__ = [
    "DOCKER_HUB",
    "InvalidReference",
    "InvalidReferenceError",
    "Reference",
    "canonical_name",
    "glob_pattern",
    "ipv4_unmapped",
    "name_pattern",
    "node_local",
    "plain_port",
    "single_label",
    "validate_digest",
]

DOCKER_HUB: Final = "docker.io"
DOCKER_HUB_API: Final = "registry-1.docker.io"  # where docker.io's /v2/ API lives
_HUB_ALIASES: Final = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_DEFAULT_PORTS: Final = frozenset({"443", "80"})  # HTTPS's and HTTP's
MAX_NAME_LENGTH: Final = 255  # characters of registry/repository, as in distribution

_PATH_COMPONENT: Final = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN_COMPONENT: Final = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST: Final = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::(?P<port>[0-9]+))?"
)
_TAG: Final = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST_HEX_LENGTH: Final = {"sha256": 64, "sha512": 128}
_DIGEST: Final = re.compile(r"(?P<algorithm>[a-z0-9]+(?:[.+_-][a-z0-9]+)*):(?P<hex>[0-9a-fA-F]+)")


def validate_digest(digest: str, *, where: str = "") -> str:
    """Check that `digest` is `sha256:<64 hex>` or `sha512:<128 hex>` in lowercase; return it.

    Raises:
        InvalidReferenceError: the algorithm is unknown or the hex part has the wrong length or case.
    """
    match = _DIGEST.fullmatch(digest)
    if match is None:
        raise InvalidReferenceError(
            f'"{digest}" is not a digest (expected sha256:<64 hex digits>)', where=where
        )
    algorithm, hexpart = match["algorithm"], match["hex"]
    if algorithm not in _DIGEST_HEX_LENGTH:
        raise InvalidReferenceError(
            f'digest algorithm "{algorithm}" is not supported (use sha256 or sha512)', where=where
        )
    if len(hexpart) != _DIGEST_HEX_LENGTH[algorithm]:
        raise InvalidReferenceError(
            f"{algorithm} digest must have {_DIGEST_HEX_LENGTH[algorithm]} hex digits, "
            f'"{digest}" has {len(hexpart)}',
            where=where,
        )
    if hexpart != hexpart.lower():
        raise InvalidReferenceError(f'digest "{digest}" must be lowercase hex', where=where)
    return digest


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed image reference; `registry` is normalised (`docker.io`, lowercase host)."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Parse an image reference as Docker and Kubernetes read it.

        Raises:
            InvalidReferenceError: the text does not parse; the message names the part that is wrong.
        """
        where = f'image reference "{text}"'
        if not text:
            raise InvalidReferenceError("the image reference is empty", where=where)
        if text != text.strip() or any(c.isspace() for c in text):
            raise InvalidReferenceError("an image reference may not contain whitespace", where=where)
        if "://" in text:
            raise InvalidReferenceError(
                "an image reference has no URL scheme",
                where=where,
                hint="write it as registry.example.com/repo:tag, without http:// or https://",
            )
        remainder, at, digest = text.partition("@")
        if at:
            if not digest:
                raise InvalidReferenceError(
                    'nothing follows "@" (expected a digest such as sha256:...)', where=where
                )
            if "@" in digest:
                raise InvalidReferenceError('more than one "@"', where=where)
            validate_digest(digest, where=where)
        tag: str | None = None
        last_colon, last_slash = remainder.rfind(":"), remainder.rfind("/")
        if last_colon > last_slash:
            remainder, tag = remainder[:last_colon], remainder[last_colon + 1 :]
            if not _TAG.fullmatch(tag):
                raise InvalidReferenceError(
                    f'"{tag}" is not a valid tag (up to 128 letters, digits, "_", "." or "-", '
                    'not starting with "." or "-")',
                    where=where,
                )
        if not remainder:
            raise InvalidReferenceError("the repository name is missing", where=where)
        registry, repository = _split_registry(remainder, where)
        if len(registry) + 1 + len(repository) > MAX_NAME_LENGTH:
            raise InvalidReferenceError(f"the name is longer than {MAX_NAME_LENGTH} characters", where=where)
        return cls(registry=registry, repository=repository, tag=tag, digest=digest or None)

    @property
    def name(self) -> str:
        """`registry/repository`, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        """Host[:port] serving the /v2/ API (Docker Hub's differs from its name)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def target(self) -> str:
        """What to fetch: the digest when pinned, else the tag, else `latest` (as Docker does)."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> Reference:
        """The same image pinned to `digest` (the tag is kept for display)."""
        return replace(self, digest=validate_digest(digest, where=str(self)))

    def with_tag(self, tag: str) -> Reference:
        """The same repository at `tag`, without a digest."""
        return replace(self, tag=tag, digest=None)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def canonical_name(name: str) -> str | None:
    """The name a rule written for the image's registry knows `name` (`registry[:port]/repository`,
    as `Reference` prints it) by, when that differs from `name`; None when it does not.

    A scheme's default port (443 for HTTPS, 80 for HTTP) is dropped, and a port written with
    leading zeros is written plainly; a Docker Hub host left with no port is then Docker Hub
    (`registry-1.docker.io:443/nginx` is `docker.io/library/nginx`, as `Reference.parse` reads it
    without the port): a port cannot take an image out of its registry's name.

    Only for matching names (image rules, the resource a summary names): what is fetched and what
    results are cached under keeps the host as written (`host:80` over HTTPS is another endpoint
    than `host`).
    """
    registry, slash, rest = name.partition("/")
    registry = _plain_ipv6(registry)
    host, colon, port = registry.rpartition(":")
    if not slash or not host or not colon or not port.isdigit() or not port.isascii():
        spelled = f"{registry}{slash}{rest}"  # an IPv6 address spelled otherwise, without a port
        return spelled if slash and spelled != name else None
    number = int(port)  # `:0443` is port 443 to containerd (Go's strconv): no way around a rule
    if str(number) not in _DEFAULT_PORTS:
        plain = f"{host}:{number}/{rest}"
        return plain if plain != name else None
    if host in _HUB_ALIASES:
        host = DOCKER_HUB
        if "/" not in rest:
            rest = f"library/{rest}"
    return f"{host}/{rest}"


def plain_port(name: str) -> str:
    """`name` (`registry[:port]/repository`, or a pattern of such names) with its registry's port
    written without leading zeros (`host:0443/app` is `host:443/app`, as containerd reads it); the
    host, and a name without a port, unchanged, but for an IPv6 address, written as `ipaddress`
    writes it (`[0:0::1]` is `[::1]`)."""
    registry, slash, rest = name.partition("/")
    registry = _plain_ipv6(registry) if slash else registry
    host, colon, port = registry.rpartition(":")
    if not slash or not host or not colon or not port.isdigit() or not port.isascii():
        return f"{registry}{slash}{rest}"
    return f"{host}:{int(port)}/{rest}"


def plain_registry(registry: str) -> str:
    """A registry `host[:port]` as `plain_port` writes it, lower-cased: the one spelling of an
    endpoint, for looking it up in lists of hosts (`127.0.0.1:0080` is `127.0.0.1:80`)."""
    return plain_port(f"{registry.lower()}/_")[: -len("/_")]


def _plain_ipv6(registry: str) -> str:
    """`[address]` or `[address]:port` with the address in its one short form (found in review:
    `[0:0:0:0:0:0:0:1]` and `[::0001]` escaped a rule for `[::1]`); anything else unchanged."""
    if not registry.startswith("["):
        return registry
    address, bracket, port = registry[1:].partition("]")
    if not bracket:
        return registry
    try:
        plain = ipaddress.IPv6Address(address).compressed
    except ValueError:
        return registry  # a pattern's wildcard, or not an address
    return f"[{plain}]{port}"


def _check_ipv6_host(registry: str, where: str) -> None:
    """Refuse a bracketed host that is not one IPv6 address in hex, or embeds an IPv4 address.

    `[::ffff:7f00:1]` reaches 127.0.0.1, and `[64:ff9b::a00:5]` reaches 10.0.0.5 through NAT64,
    yet no rule written for the IPv4 address could match them: an image would take another
    registry's name, and fall to `unmatched` (`model.embedded_ipv4` lists the forms). distribution's
    grammar refuses `[::ffff:127.0.0.1]` (no IPv4 in IPv6) and so does trustgate, in every spelling.
    Only bracketed hosts come here, so other references pay nothing for it.
    """
    address, _, port = registry[1:].partition("]")
    try:
        parsed: ipaddress.IPv6Address | None = ipaddress.IPv6Address(address)
    except ValueError:
        parsed = None
    embedded = None if parsed is None else embedded_ipv4(parsed)
    if parsed is not None and embedded is not None:
        ipv4, how = embedded
        relayed = relayed_ipv4_note(parsed)
        raise InvalidReferenceError(
            f'"{registry}" is {how}, which image rules would not match',
            where=where,
            hint=(
                f"write the registry as {ipv4}{port}, as its rules and exceptions name it"
                if relayed is None
                else f"name the registry by its DNS name ({relayed})"
            ),
        )
    if parsed is None or "." in address:
        raise InvalidReferenceError(
            f'"{registry}" is not a valid registry: "{address}" is not an IPv6 address '
            "in hexadecimal (IPv4 inside IPv6, such as ::1.2.3.4, is not accepted)",
            where=where,
        )


def _check_ipv4_host(registry: str, where: str) -> None:
    """Refuse a host that the C resolver reads as an IPv4 address written other than in its
    dotted-decimal form (`127.1`, `2130706433:80`, `0x7f000001:80`, `0177.0.0.1` are 127.0.0.1): as for an
    IPv4-mapped address, the image would reach a registry under a name its rules do not know.
    No DNS name is all digits in its last label, so no registry's name is refused."""
    plain = _plain_ipv4(registry)
    if plain is not None and plain != registry:
        raise InvalidReferenceError(
            f'"{registry}" is another spelling of the IPv4 address {plain.partition(":")[0]}, '
            "which image rules would not match",
            where=where,
            hint=f"write the registry as {plain}, as its rules and exceptions name it{octal_note(registry)}",
        )


def _plain_ipv4(registry: str) -> str | None:
    """`host[:port]` with its host in dotted-decimal form when the C resolver reads it as an IPv4
    address (`127.1:5000` is `127.0.0.1:5000`); None for a host it does not."""
    host, colon, port = registry.partition(":")
    try:
        plain = socket.inet_ntoa(socket.inet_aton(host))
    except (OSError, ValueError):  # not an address; ValueError: a NUL, which no host holds
        return None
    return f"{plain}{colon}{port}"


# Names a node resolves to itself (RFC 6761's `localhost` and its subdomains; Debian's and Red Hat's
# /etc/hosts aliases of the loopback address).
_LOCAL_NAMES: Final = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_THIS_NETWORK: Final = ipaddress.IPv4Network("0.0.0.0/8")  # Linux connects 0.0.0.0 to the host itself


def node_local(registry: str) -> str | None:
    """What makes `registry` (`host[:port]`, as `Reference.parse` writes it) an address each
    machine answers for itself, where the kubelet pulls from the node and trustgate reaches its own
    pod: "the loopback address", "a link-local address", ...; None for any other registry.

    Only what the name or address says: a DNS name resolving to a loopback address is not known
    without asking DNS.
    """
    if registry.startswith("["):
        text = registry[1:].partition("]")[0]
    else:
        text = registry.partition(":")[0]
        if text in _LOCAL_NAMES or text.endswith(".localhost"):
            return f"{text}, a name each machine resolves to itself"
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if address.is_loopback:
        return f"{text}, the loopback address"
    if address.is_link_local:
        return f"{text}, a link-local address"
    if address.is_unspecified or (isinstance(address, ipaddress.IPv4Address) and address in _THIS_NETWORK):
        return f"{text}, an address of this host"
    return None


def single_label(registry: str) -> str | None:
    """What makes `registry` (`host[:port]`, as `Reference.parse` writes it) a name that may be two
    registries: a host of one label (`registry:5000`; `MyReg` in `MyReg/app`), which trustgate's pod
    resolves through the cluster's DNS and its own search domains, and the node's container runtime
    through the node's resolver or its own registry configuration (a mirror for that name, as kind
    and k3d set up); None for any other registry. Docker Hub's short names (`nginx`, `myorg/app`)
    name no host: `Reference.parse` writes them as docker.io. `localhost` is `node_local`'s.
    """
    if registry.startswith("["):
        return None
    host = registry.partition(":")[0]
    if "." in host or host in _LOCAL_NAMES:
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return f"{host}, a single-label name"
    return None


def ipv4_unmapped(text: str) -> str:
    """`text` (a reference or name) with a registry that is an IPv4 address spelled otherwise,
    an IPv6 address embedding it (`[::ffff:7f00:1]:5000`, `[64:ff9b::7f00:1]:5000`:
    `model.embedded_ipv4`) or not dotted-decimal (`127.1:5000`), written as the address
    (`127.0.0.1:5000`); any other text unchanged.

    `Reference.parse` refuses such a registry; this is for finding what was recorded about one
    under the name of the registry it reaches (`trustgate log query --image 127.0.0.1:5000/*`).
    """
    first, slash, rest = text.partition("/")
    if not slash or not names_registry(first):
        return text  # `31337/miner`, `0xdead/tool`: Docker Hub's, not an address (`names_registry`)
    if not first.startswith("["):
        plain = _plain_ipv4(first)
        return text if plain is None else f"{plain}/{rest}"
    address, bracket, port = first[1:].partition("]")
    try:
        embedded = embedded_ipv4(ipaddress.IPv6Address(address)) if bracket else None
    except ValueError:
        return text
    return text if embedded is None else f"{embedded[0]}{port}/{rest}"


def name_pattern(glob: str) -> str:
    """An image name glob read as `Reference.parse` reads a name, so that it can match one:
    a Docker Hub short name is Docker Hub's (`nginx` is `docker.io/library/nginx`, `acme/app*`
    `docker.io/acme/app*`), a registry host is lower case (`INTERNAL/**` is host `internal`'s, as
    `names_registry` reads it), and Docker Hub's other hosts written
    without a port are `docker.io` (`index.docker.io/library/*`). A pattern naming a port keeps
    it (`host:443/sandbox/**` names the registry as written: see `ImagePolicy.rule_for`), and
    one that starts with a wildcard, or whose first part holds one, is left as written but for
    a host's case (`*.ACME.io/**` is `*.acme.io/**`, `[FD00::AB]/**` is `[fd00::ab]/**`).
    Names are matched in that form, so a pattern left in another would never match.
    """
    first, slash, rest = glob.partition("/")
    registry = slash and (names_registry(first) or "[" in first)
    if registry:
        first = first.lower()  # a host, wildcard or not: `*.ACME.io/**`, `INTERNAL/**` (as Docker reads it)
    if glob[:1] in ("*", "?", "["):
        return f"{first}{slash}{rest}"
    if not slash:
        return f"{DOCKER_HUB}/library/{glob}"
    if any(c in first for c in "*?["):
        return f"{first}/{rest}"
    if not registry:
        return f"{DOCKER_HUB}/{glob}"
    host = first
    if host in _HUB_ALIASES:
        host = DOCKER_HUB
        if "/" not in rest and "**" not in rest:
            rest = f"library/{rest}"
    return f"{host}/{rest}"


def glob_pattern(glob: str) -> re.Pattern[str]:
    """An image name glob: `*` matches within one path segment, `**` across segments, `?` one character."""
    out = []
    i = 0
    while i < len(glob):
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(out))


def _split_registry(name: str, where: str) -> tuple[str, str]:
    first, slash, rest = name.partition("/")
    if slash and names_registry(first):  # as Docker reads it
        if not _HOST.fullmatch(first):
            raise InvalidReferenceError(f'"{first}" is not a valid registry host[:port]', where=where)
        if first.startswith("["):
            _check_ipv6_host(first, where)
        else:
            _check_ipv4_host(first, where)
        registry, path = first.lower(), rest
        if registry in _HUB_ALIASES:
            registry = DOCKER_HUB
    else:
        registry, path = DOCKER_HUB, name
    if not path:
        raise InvalidReferenceError("the repository name is missing after the registry", where=where)
    components = path.split("/")
    for component in components:
        if not component:
            raise InvalidReferenceError(
                f'"{path}" has an empty path component (a doubled or trailing "/")', where=where
            )
        if component != component.lower() and _PATH_COMPONENT.fullmatch(component.lower()):
            raise InvalidReferenceError(f'repository name "{path}" must be lowercase', where=where)
        if not _PATH_COMPONENT.fullmatch(component):
            raise InvalidReferenceError(
                f'"{component}" is not a valid repository path component (lowercase letters and digits, '
                'separated by ".", "_", "__" or "-")',
                where=where,
            )
    if registry == DOCKER_HUB and len(components) == 1:
        path = f"library/{path}"
    return registry, path
