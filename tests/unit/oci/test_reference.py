"""Image reference parsing: the distribution grammar, Docker Hub normalisation, clear errors."""

from __future__ import annotations

import pytest

from trustgate.oci.errors import InvalidReferenceError
from trustgate.oci.reference import Reference, validate_digest

D256 = "sha256:" + "ab" * 32
D512 = "sha512:" + "cd" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", None, None),
        ("nginx:1.27", "docker.io", "library/nginx", "1.27", None),
        ("bitnami/redis:7", "docker.io", "bitnami/redis", "7", None),
        ("docker.io/nginx", "docker.io", "library/nginx", None, None),
        ("index.docker.io/library/nginx:latest", "docker.io", "library/nginx", "latest", None),
        ("ghcr.io/acme/app/api:v1.2.3", "ghcr.io", "acme/app/api", "v1.2.3", None),
        ("localhost/app", "localhost", "app", None, None),
        ("localhost:5000/team/app:dev", "localhost:5000", "team/app", "dev", None),
        ("127.0.0.1:5000/app@" + D256, "127.0.0.1:5000", "app", None, D256),
        ("[::1]:5000/app:1", "[::1]:5000", "app", "1", None),
        ("Registry.Example.COM/a/b:Tag_1", "registry.example.com", "a/b", "Tag_1", None),
        ("quay.io/a/b:1.0@" + D256, "quay.io", "a/b", "1.0", D256),
        ("example.com/a__b/c-d/e.f:x", "example.com", "a__b/c-d/e.f", "x", None),
        ("example.com/app@" + D512, "example.com", "app", None, D512),
        ("myregistry:5000/app", "myregistry:5000", "app", None, None),
    ],
)
def test_parses(text: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        (" nginx", "whitespace"),
        ("https://ghcr.io/acme/app", "URL scheme"),
        ("ghcr.io/Acme/app", "must be lowercase"),
        ("nginx:", "not a valid tag"),
        ("nginx:-bad", "not a valid tag"),
        ("nginx:" + "a" * 129, "not a valid tag"),
        ("nginx@", "nothing follows"),
        ("nginx@sha256:abc", "64 hex digits"),
        ("nginx@sha256:" + "AB" * 32, "lowercase hex"),
        ("nginx@md5:" + "ab" * 16, "not supported"),
        ("nginx@" + D256 + "@" + D256, 'more than one "@"'),
        ("ghcr.io/", "repository name is missing"),
        ("ghcr.io//app", "empty path component"),
        ("ghcr.io/app/", "empty path component"),
        ("ghcr.io/a--/b", "not a valid repository path component"),
        ("ghcr.io/_a/b", "not a valid repository path component"),
        ("bad_host.io:5000/app", "not a valid registry"),
        ("host.io:port/app", "not a valid registry"),
        ("example.com/" + "a" * 250, "longer than 255"),
        (":1.0", "repository name is missing"),
        (
            "[::ffff:7f00:1]:5000/app",
            "IPv4-mapped IPv6 address, another spelling of the IPv4 address 127.0.0.1",
        ),
        ("[::FFFF:7F00:1]/app", "IPv4-mapped"),
        ("[0:0:0:0:0:ffff:c000:201]:443/app:1", "IPv4 address 192.0.2.1"),
        (
            "[::ffff:127.0.0.1]:5000/app",
            "IPv4-mapped IPv6 address, another spelling of the IPv4 address 127.0.0.1",
        ),
        ("[fd00::1.2.3.4]/app", "not an IPv6 address in hexadecimal"),
        ("[::1.2.3.4]/app", "another spelling of the IPv4 address 1.2.3.4"),
        ("[1:2:3]/app", "not an IPv6 address"),
        ("127.1:5000/app", "another spelling of the IPv4 address 127.0.0.1"),
        ("2130706433:5000/app", "another spelling of the IPv4 address 127.0.0.1"),
        ("0x7f000001:5000/app", "another spelling of the IPv4 address 127.0.0.1"),
        ("0177.0.0.1/app", "another spelling of the IPv4 address 127.0.0.1"),
        ("127.0.0.01:5000/app", "another spelling of the IPv4 address 127.0.0.1"),
        ("10:5000/app", "another spelling of the IPv4 address 0.0.0.10"),
    ],
)
def test_rejects_with_words(text: str, words: str) -> None:
    with pytest.raises(InvalidReferenceError) as caught:
        Reference.parse(text)
    assert words in caught.value.message
    assert text in caught.value.diagnostics() or not text


def test_prints_back_and_pins() -> None:
    ref = Reference.parse("localhost:5000/team/app:1.0")
    assert str(ref) == "localhost:5000/team/app:1.0"
    pinned = ref.with_digest(D256)
    assert str(pinned) == f"localhost:5000/team/app:1.0@{D256}"
    assert pinned.target == D256
    assert ref.target == "1.0"
    assert Reference.parse("nginx").target == "latest"
    assert str(Reference.parse("nginx")) == "docker.io/library/nginx"
    assert Reference.parse("nginx").api_host == "registry-1.docker.io"
    assert Reference.parse(str(pinned)) == pinned
    assert pinned.with_tag("2.0") == Reference("localhost:5000", "team/app", "2.0")
    with pytest.raises(InvalidReferenceError):
        ref.with_digest("sha256:nothex")


def test_validate_digest() -> None:
    assert validate_digest(D256) == D256
    with pytest.raises(InvalidReferenceError, match="not a digest"):
        validate_digest("latest")


@pytest.mark.parametrize(
    ("name", "bare"),
    [
        ("localhost:443/shop/app", "localhost/shop/app"),
        ("registry.example.com:80/a/b", "registry.example.com/a/b"),
        ("[::1]:443/app", "[::1]/app"),
        ("localhost:5000/app", None),
        # containerd reads the port as a number: leading zeros change nothing there
        ("ghcr.io:0443/org/app", "ghcr.io/org/app"),
        ("ghcr.io:00080/org/app", "ghcr.io/org/app"),
        ("localhost:05000/app", "localhost:5000/app"),
        ("[::1]/app", None),
        ("docker.io/library/nginx", None),
        # Docker Hub's hosts, without their default port, are Docker Hub (and its `library/`)
        ("registry-1.docker.io:443/library/nginx", "docker.io/library/nginx"),
        ("index.docker.io:443/nginx", "docker.io/library/nginx"),
        ("docker.io:0443/nginx", "docker.io/library/nginx"),
        ("docker.io:80/bitnami/redis", "docker.io/bitnami/redis"),
        ("registry-1.docker.io:5000/nginx", None),  # another port: another registry
    ],
)
def test_a_default_port_is_dropped_for_matching_only(name: str, bare: str | None) -> None:
    from trustgate.oci.reference import canonical_name

    assert canonical_name(Reference.parse(name).name) == bare
    if bare is not None:  # what is fetched keeps the port as written
        assert Reference.parse(name).registry.rsplit(":", 1)[1] == name.split("/")[0].rsplit(":", 1)[1]


@pytest.mark.parametrize(
    ("glob", "read"),
    [
        ("*.ACME.io/prod/**", "*.acme.io/prod/**"),
        ("[FD00::AB]/prod/**", "[fd00::ab]/prod/**"),
        ("Registry.Acme.io/Shop/*", "registry.acme.io/Shop/*"),  # the repository is left as written
        ("INTERNAL/**", "internal/**"),  # a registry by its case, as `INTERNAL/app` is host internal's
        ("Internal:5000/app", "internal:5000/app"),
        ("internal/**", "docker.io/internal/**"),  # Docker Hub's user internal
        ("1234/**", "docker.io/1234/**"),  # a Docker Hub user, not an address
        ("0xdead/*", "docker.io/0xdead/*"),
        ("**", "**"),
    ],
)
def test_name_pattern_lowercases_the_host_always(glob: str, read: str) -> None:
    from trustgate.oci.reference import name_pattern

    assert name_pattern(glob) == read


@pytest.mark.parametrize(
    ("name", "plain"),
    [
        ("[0:0:0:0:0:0:0:1]/app", "[::1]/app"),
        ("[::0001]:443/app", "[::1]/app"),
        ("[FD00:0::AB]:5000/app", "[fd00::ab]:5000/app"),
        ("[::1]/app", None),
    ],
)
def test_canonical_name_writes_an_ipv6_address_one_way(name: str, plain: str | None) -> None:
    from trustgate.oci.reference import canonical_name

    assert canonical_name(name) == plain


def test_an_ipv4_mapped_registry_says_how_to_write_it() -> None:
    with pytest.raises(InvalidReferenceError) as caught:
        Reference.parse("[::ffff:7f00:1]:43661/prod/api:v1")
    assert caught.value.hint == "write the registry as 127.0.0.1:43661, as its rules and exceptions name it"
    assert Reference.parse("[FD00::AB]:5000/app").registry == "[fd00::ab]:5000"
    with pytest.raises(InvalidReferenceError) as caught:
        Reference.parse("127.1:5000/app")
    assert caught.value.hint == "write the registry as 127.0.0.1:5000, as its rules and exceptions name it"
    for fine in ("127.0.0.1:5000/app", "10.0.0.1/app", "1e100.net/app", "registry-1.example:443/app"):
        assert Reference.parse(fine).registry == fine.partition("/")[0]


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("31337/miner:1", "31337/miner:1"),  # Docker Hub's user 31337, as Docker reads it
        ("0xdead/tool:1", "0xdead/tool:1"),
        ("2130706433/app", "2130706433/app"),
        ("docker.io/123/app", "docker.io/123/app"),
        ("127.1/app:1", "127.0.0.1/app:1"),  # a registry: a dot, a port or an upper-case letter
        ("2130706433:5000/app", "127.0.0.1:5000/app"),
        ("0X7F000001/app", "127.0.0.1/app"),
        ("[::ffff:7f00:1]:5000/app", "127.0.0.1:5000/app"),
        ("[64:ff9b::a00:5]:5000/app", "10.0.0.5:5000/app"),
        ("[64:FF9B:1::A00:5]/app", "10.0.0.5/app"),
        ("[::7f00:1]:5000/app", "127.0.0.1:5000/app"),
        ("[2002:a00:5::1]/app", "10.0.0.5/app"),
        ("[::1]:5000/app", "[::1]:5000/app"),
        ("[fd00::a00:5]:5000/app", "[fd00::a00:5]:5000/app"),
    ],
)
def test_only_a_registry_is_read_as_an_address(text: str, read: str) -> None:
    from trustgate.oci.reference import ipv4_unmapped

    assert ipv4_unmapped(text) == read


@pytest.mark.parametrize(
    ("first", "registry"),
    [
        ("ghcr.io", True),
        ("localhost", True),
        ("host:5000", True),
        ("[::1]", True),
        ("INTERNAL", True),
        ("Acme", True),
        ("acme", False),
        ("31337", False),
        ("0xdead", False),
    ],
)
def test_which_first_part_names_a_registry(first: str, registry: bool) -> None:
    from trustgate.model import names_registry

    assert names_registry(first) is registry
    assert (Reference.parse(f"{first}/app").registry != "docker.io") is registry


def test_a_leading_zero_is_said_to_be_octal() -> None:
    with pytest.raises(InvalidReferenceError) as caught:
        Reference.parse("0127.0.0.1:5000/app")
    assert "87.0.0.1" in caught.value.message
    assert "leading 0" in caught.value.diagnostics() and "octal" in caught.value.diagnostics()


# (a reference, what its message says): IPv6 addresses that embed an IPv4 address reach it (or
# route through it), so a rule written for that address would not match them.
EMBEDDED_IPV4 = [
    (
        "[64:ff9b::a00:5]:5000/prod/api:v1",
        "a NAT64 address (64:ff9b::/96, RFC 6052): the IPv4 address 10.0.0.5",
    ),
    (
        "[64:ff9b::10.0.0.5]:5000/prod/api:v1",
        "NAT64 address (64:ff9b::/96, RFC 6052): the IPv4 address 10.0.0.5",
    ),
    ("[0064:FF9B:0::0A00:0005]/prod/api", "the IPv4 address 10.0.0.5"),
    ("[64:ff9b:1::a00:5]:5000/prod/api", "NAT64 address (64:ff9b:1::/48, RFC 8215)"),
    ("[64:ff9b:1:abcd::a00:5]/prod/api", "10.0.0.5 with the usual /96 prefix"),
    (
        "[::7f00:1]:5000/app",
        "IPv4-compatible IPv6 address (::a.b.c.d, deprecated by RFC 4291), another spelling "
        "of the IPv4 address 127.0.0.1",
    ),
    ("[::127.0.0.1]:5000/app", "another spelling of the IPv4 address 127.0.0.1"),
    ("[0:0:0:0:0:0:a00:5]/app", "another spelling of the IPv4 address 10.0.0.5"),
    ("[::2]/app", "another spelling of the IPv4 address 0.0.0.2"),
    (
        "[::ffff:0:7f00:1]:5000/app",
        "an IPv4-translated address (::ffff:0:a.b.c.d, RFC 2765): the IPv4 address 127.0.0.1",
    ),
    ("[::ffff:0:10.0.0.5]/app", "the IPv4 address 10.0.0.5 through a translator"),
    (
        "[2002:a00:5::1]:5000/app",
        "a 6to4 address (2002::/16, RFC 3056), reached through the IPv4 address 10.0.0.5",
    ),
    (
        "[2001:0:4136:e378:8000:63bf:3fff:fdd2]/app",
        "a Teredo address (2001::/32, RFC 4380) of the IPv4 client 192.0.2.45",
    ),
]


@pytest.mark.parametrize(("text", "words"), EMBEDDED_IPV4)
def test_an_ipv6_registry_embedding_an_ipv4_address_is_refused(text: str, words: str) -> None:
    with pytest.raises(InvalidReferenceError) as caught:
        Reference.parse(text)
    assert words in caught.value.message
    assert "which image rules would not match" in caught.value.message
    assert text.partition("/")[0] in caught.value.message


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("[64:ff9b::a00:5]:5000/prod/api:v1", "10.0.0.5:5000"),
        ("[64:ff9b:1::a00:5]/prod/api:v1", "10.0.0.5"),
        ("[::7f00:1]:5000/app", "127.0.0.1:5000"),
    ],
)
def test_an_embedding_registry_says_which_ipv4_address_to_write(text: str, hint: str) -> None:
    with pytest.raises(InvalidReferenceError) as caught:
        Reference.parse(text)
    assert caught.value.hint == f"write the registry as {hint}, as its rules and exceptions name it"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[2002:a00:5::1]:443/app", "10.0.0.5 is the 6to4 relay it is reached through, not the registry"),
        (
            "[2001:0:4136:e378:8000:63bf:3fff:fdd2]/app",
            "192.0.2.45 is the NAT its Teredo host is behind, reached through a relay, not the registry",
        ),
    ],
)
def test_a_relayed_registry_is_to_be_named_by_dns_not_by_the_relays_address(text: str, why: str) -> None:
    """A 6to4 or Teredo address embeds a relay's (or a NAT's) IPv4 address, not the registry's: the
    hint said to write that address, which names another host."""
    with pytest.raises(InvalidReferenceError) as caught:
        Reference.parse(text)
    assert caught.value.hint == f"name the registry by its DNS name ({why})"
    assert "write the registry as" not in caught.value.diagnostics()


@pytest.mark.parametrize(
    ("text", "registry"),
    [
        ("[::1]:5000/app", "[::1]:5000"),  # IPv6's loopback, not 0.0.0.1
        ("[::]:5000/app", "[::]:5000"),  # unspecified, not 0.0.0.0
        ("[fd00::a00:5]:5000/app", "[fd00::a00:5]:5000"),
        ("[64:ff9b:0:0:1::a00:5]/app", "[64:ff9b:0:0:1::a00:5]"),  # outside both NAT64 prefixes
        ("[64:ff9b:2::a00:5]/app", "[64:ff9b:2::a00:5]"),
        ("[2001:db8::a00:5]/app", "[2001:db8::a00:5]"),  # 2001:db8::/32, not Teredo's 2001::/32
        ("[2003::a00:5]/app", "[2003::a00:5]"),
    ],
)
def test_an_ipv6_registry_of_its_own_is_accepted(text: str, registry: str) -> None:
    assert Reference.parse(text).registry == registry


@pytest.mark.parametrize(
    ("reference", "host"),
    [
        ("registry:5000/app", "registry"),
        ("MyReg/app", "myreg"),
        ("reg-1:1/a/b", "reg-1"),
        ("nginx", None),  # Docker Hub's short names name no host
        ("library/nginx", None),
        ("myorg/app", None),
        ("docker.io/library/nginx", None),
        ("localhost:5000/app", None),  # node_local's
        ("127.0.0.1:5000/app", None),
        ("[::1]:5000/app", None),
        ("registry.example.com:5000/app", None),
        ("k3d-registry.localhost:5000/app", None),
    ],
)
def test_single_label_registries_are_told_from_docker_hub_names(reference: str, host: str | None) -> None:
    from trustgate.oci.reference import single_label

    said = single_label(Reference.parse(reference).registry)
    assert said == (f"{host}, a single-label name" if host else None)
