#!/usr/bin/env bash
# podman, runc and debootstrap (Debian), for the engine_ container test in tests/it/container.rs:
# a Debian root file system (`--variant=minbase --include=python3`, about 30 s, 235 MB) built
# once into /var/cache/labup-ci/rootfs and imported into podman as `localhost/labup-ci-deb`.
# podman needs two settings on these machines (no-limit ulimits are refused; crun does not run
# on hybrid cgroups): /etc/labup-ci/containers.conf, passed by the test in CONTAINERS_CONF.
set -euo pipefail
if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
  for i in 1 2 3 4 5 6; do
    if timeout 300 apt-get install -y -qq --no-install-recommends podman runc debootstrap uidmap >/dev/null 2>&1; then
      break
    fi
    [ "$i" = 1 ] && apt-get update -qq || sleep 10
  done
fi
command -v podman >/dev/null && command -v runc >/dev/null && command -v debootstrap >/dev/null

mkdir -p /etc/labup-ci
cat > /etc/labup-ci/containers.conf <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF=/etc/labup-ci/containers.conf

cache=/var/cache/labup-ci
image=localhost/labup-ci-deb
if ! [ -f "$cache/rootfs.done" ]; then
  rm -rf "$cache/rootfs"
  mkdir -p "$cache"
  # The Debian mirror this machine's apt already uses (deb822 or one-line sources).
  mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
  [ -n "$mirror" ] || mirror=$(sed -n 's/^deb \(\[[^]]*\] \)\?\(http[^ ]*debian\) .*/\2/p' /etc/apt/sources.list 2>/dev/null | head -n1)
  [ -n "$mirror" ] || { echo "no Debian mirror found in the apt sources" >&2; exit 1; }
  timeout 600 debootstrap --variant=minbase --include=python3 bookworm "$cache/rootfs" \
    "$mirror" >"$cache/debootstrap.log" 2>&1 \
    || { tail -n 20 "$cache/debootstrap.log" >&2; exit 1; }
  touch "$cache/rootfs.done"
fi
if ! podman image exists "$image"; then
  tar -C "$cache/rootfs" -c . | timeout 300 podman import -q - "$image" >/dev/null
fi
podman image exists "$image"
