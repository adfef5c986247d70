#!/bin/sh
# Installs the Debian packages the test suite starts as real services, when
# missing. Idempotent; runs from `make dev`. Everything it installs is started
# by the tests themselves, on 127.0.0.1, and stopped afterwards.
#
#   docker-registry  CNCF distribution: the OCI registry the supply-chain tests push to
#   postgresql       the decision log's PostgreSQL store (tests run initdb in a temp dir, as `nobody` when root)
#   pgbouncer        a pooler in transaction mode in front of it (tests start their own; on a machine
#                    with systemd the package also enables its idle service on localhost:6432)
#   git, gnupg, openssh-client  the pre-sync gate runs git; its tests sign commits with test GPG and SSH keys
#   etcd-server      etcd for the end-to-end admission tests' kube-apiserver
#   golang-go golang-github-modern-go-reflect2-dev dpkg-dev make gcc jq rsync
#                    build kube-apiserver from Debian's `kubernetes` source package (scripts/kube-apiserver.sh)
#   wrk              the webhook benchmark's load generator (bench/webhook.py)
#   chromium         the real browser the auditor UI tests drive with Playwright (no browser download)
#   locales          glibc's locale sources: a test builds en_US.UTF-8 for a PostgreSQL database of that collation
set -eu

PACKAGES="docker-registry postgresql pgbouncer git gnupg openssh-client"
PACKAGES="$PACKAGES etcd-server golang-go golang-github-modern-go-reflect2-dev dpkg-dev make gcc jq rsync wrk"
PACKAGES="$PACKAGES chromium locales"

# `apt-get source kubernetes` needs a deb-src entry; Debian images ship only `deb` ones.
DEB_SRC=/etc/apt/sources.list.d/trustgate-deb-src.sources
need_src=""
if ! grep -rqs '^Types:.*deb-src\|^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    need_src=yes
fi

missing=""
for pkg in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
[ -z "$missing" ] && [ -z "$need_src" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        echo "install-system-deps: need root (or sudo) to install:$missing" >&2
        exit 1
    fi
else
    SUDO=""
fi
if [ -n "$need_src" ]; then
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$codename" | $SUDO tee "$DEB_SRC" >/dev/null
    echo "install-system-deps: added deb-src entries ($DEB_SRC)"
fi
echo "install-system-deps: installing$missing"
$SUDO apt-get update -qq
# The package's post-install script would start a system-wide registry; the tests start their own.
[ -z "$missing" ] || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now docker-registry >/dev/null 2>&1 || true; fi
# Likewise the cluster Debian creates for postgresql: the tests run their own.
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now postgresql >/dev/null 2>&1 || true; fi
# And the etcd Debian starts: the admission tests run their own.
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now etcd >/dev/null 2>&1 || true; fi
