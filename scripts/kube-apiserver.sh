#!/bin/sh
# Builds kube-apiserver from Debian's `kubernetes` source package, offline, and
# caches it outside the repository. Prints the binary's path on stdout.
#
#   KUBE_APISERVER_CACHE  cache directory (default ~/.cache/trustgate)
#
# Debian packages no kube-apiserver binary for bookworm, but its source package
# vendors every Go dependency, so `make WHAT=cmd/kube-apiserver` builds with
# GOPROXY=off. With Go 1.19 the vendored github.com/modern-go/reflect2 (1.0.1)
# fails at run time (it relies on runtime internals Go 1.18 changed); Debian's
# golang-github-modern-go-reflect2-dev 1.0.2 replaces it. About 4 minutes on
# 2 cores; later runs reuse the cached binary.
#
# Needs: dpkg-dev (apt-get source), golang-go, golang-github-modern-go-reflect2-dev,
# rsync, and a deb-src entry for bookworm main (scripts/install-system-deps.sh adds them).
set -eu

CACHE="${KUBE_APISERVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/trustgate}"
mkdir -p "$CACHE"

version=$(apt-cache showsrc kubernetes 2>/dev/null | sed -n 's/^Version: //p' | head -n 1)
if [ -z "$version" ]; then
    echo "kube-apiserver.sh: no source package 'kubernetes' (add a deb-src entry and run apt-get update;" \
         "scripts/install-system-deps.sh does both)" >&2
    exit 1
fi
# 1.20.5+really1.20.2-1.1+deb12u1 -> 1.20.2-1.1+deb12u1
tag=$(printf '%s' "$version" | sed 's/^.*+really//')
bin="$CACHE/kube-apiserver-$tag"
if [ -x "$bin" ]; then
    echo "$bin"
    exit 0
fi

# One build at a time (parallel test sessions share the cache).
exec 9>"$CACHE/kube-apiserver.lock"
flock 9
if [ -x "$bin" ]; then
    echo "$bin"
    exit 0
fi

work="$CACHE/build-$tag"
rm -rf "$work"
mkdir -p "$work"
cd "$work"
echo "kube-apiserver.sh: fetching the kubernetes $version source package" >&2
apt-get source --download-only -qq "kubernetes=$version" >&2
dpkg-source --no-check -x ./kubernetes_*.dsc src >/dev/null
cd src

reflect2=/usr/share/gocode/src/github.com/modern-go/reflect2
if [ ! -d "$reflect2" ]; then
    echo "kube-apiserver.sh: $reflect2 missing (apt-get install golang-github-modern-go-reflect2-dev)" >&2
    exit 1
fi
rm -rf vendor/github.com/modern-go/reflect2
mkdir -p vendor/github.com/modern-go/reflect2
cp -r "$reflect2"/. vendor/github.com/modern-go/reflect2/
sed -i 's#^github.com/modern-go/reflect2 v1\.0\.1#github.com/modern-go/reflect2 v1.0.2#' vendor/modules.txt
sed -i 's#github.com/modern-go/reflect2 v1\.0\.1#github.com/modern-go/reflect2 v1.0.2#' go.mod
# go.sum entries are not checked with -mod=vendor, but keep them consistent for `go mod verify` readers.
for f in staging/src/k8s.io/*/go.mod; do
    sed -i 's#github.com/modern-go/reflect2 v1\.0\.1#github.com/modern-go/reflect2 v1.0.2#' "$f"
done

echo "kube-apiserver.sh: building kube-apiserver (several minutes)" >&2
GOPROXY=off GOFLAGS=-mod=vendor GO111MODULE=on KUBE_GIT_VERSION="v${tag%%-*}" \
    KUBE_BUILD_PLATFORMS=linux/amd64 make WHAT=cmd/kube-apiserver >&2
built=$(find _output -type f -name kube-apiserver -perm -u+x | head -n 1)
[ -n "$built" ] || { echo "kube-apiserver.sh: build produced no binary" >&2; exit 1; }
cp "$built" "$bin.tmp"
mv "$bin.tmp" "$bin"
cd "$CACHE"
rm -rf "$work"
echo "$bin"
