#!/usr/bin/env bash
# Makes sure the images' base, debian:bookworm-slim, is in the engine's store. Pulled when a registry answers;
# where none is reachable (CI, these machines) a stand-in is made from Debian's archive with debootstrap, with the
# slim image's dpkg excludes, and tagged with the same name so `FROM debian:bookworm-slim` resolves with
# --pull=never. The stand-in carries this machine's apt sources, CA certificates and pip settings, so that builds
# in it reach the package mirrors this machine reaches; a pulled base needs none of them.
set -euo pipefail
source "$(dirname "$0")/container-engine.sh"
BASE=docker.io/library/debian:bookworm-slim
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if $CONTAINER_ENGINE image inspect "$BASE" >/dev/null 2>&1; then
    exit 0
fi
if timeout 60 $CONTAINER_ENGINE pull -q "$BASE" >/dev/null 2>&1; then
    echo "pulled $BASE" >&2
    exit 0
fi
echo "no registry reachable: making $BASE from Debian's archive ($MIRROR)" >&2
command -v debootstrap >/dev/null || bash "$(dirname "$0")/apt-install.sh" debootstrap
ROOTFS="$(mktemp -d)"
trap 'rm -rf "$ROOTFS"' EXIT
mkdir -p "$ROOTFS/etc/dpkg/dpkg.cfg.d"
# What debian:bookworm-slim leaves out (its /etc/dpkg/dpkg.cfg.d/docker).
cat > "$ROOTFS/etc/dpkg/dpkg.cfg.d/docker" <<'CONF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
CONF
debootstrap --variant=minbase --include=ca-certificates bookworm "$ROOTFS" "$MIRROR" >&2
# And what it adds to apt's settings: no package cache or downloaded .debs left in any layer.
cat > "$ROOTFS/etc/apt/apt.conf.d/docker-clean" <<'CONF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CONF
echo 'Acquire::Languages "none";' > "$ROOTFS/etc/apt/apt.conf.d/docker-no-languages"
# This machine's way to the mirrors (none of it is in the images' Dockerfiles).
if [[ -d /etc/apt/sources.list.d ]] && compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
    cp /etc/apt/sources.list.d/*.sources "$ROOTFS/etc/apt/sources.list.d/" && rm -f "$ROOTFS/etc/apt/sources.list"
fi
cp /etc/apt/apt.conf.d/99* "$ROOTFS/etc/apt/apt.conf.d/" 2>/dev/null || true
cp /usr/local/share/ca-certificates/*.crt "$ROOTFS/usr/local/share/ca-certificates/" 2>/dev/null || true
[[ -f /etc/pip.conf ]] && cp /etc/pip.conf "$ROOTFS/etc/pip.conf"
chroot "$ROOTFS" update-ca-certificates >/dev/null
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/usr/share/doc "$ROOTFS"/usr/share/man
tar -C "$ROOTFS" -c . | $CONTAINER_ENGINE import - "$BASE" >/dev/null
echo "made $BASE ($($CONTAINER_ENGINE image inspect --format '{{.Size}}' "$BASE") bytes)" >&2
