#!/usr/bin/env bash
# Installs the Nix that tests/nix_eval.rs evaluates the flake with: Debian trixie's nix-bin
# (2.26; bookworm's 2.8 cannot evaluate lib.fileset), unpacked into a private root,
# /opt/labup-nix, and run through trixie's own loader by /opt/labup-nix/bin/nix. Nothing is
# installed system-wide: apt reads a trixie source from a private folder and only downloads.
# About 23 MiB of packages, once; a second run with the root in place does nothing.
# Runs as root on a fresh Debian machine, with no stdin.
set -euo pipefail

ROOT=${LABUP_NIX_ROOT:-/opt/labup-nix}
WANT=2.26

if [ -x "$ROOT/bin/nix" ] && "$ROOT/bin/nix" --version 2>/dev/null | grep -q " $WANT"; then
  "$ROOT/bin/nix" --version
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/parts" "$work/debs"
# The Debian mirror this machine's apt already uses (deb822 or one-line sources).
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
[ -n "$mirror" ] || mirror=$(sed -n 's/^deb \(\[[^]]*\] \)\?\(http[^ ]*debian\) .*/\2/p' /etc/apt/sources.list 2>/dev/null | head -n1)
[ -n "$mirror" ] || { echo "no Debian mirror found in the apt sources" >&2; exit 1; }
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" >"$work/sources.list"
apt_opts=(
  -o "Dir::Etc::SourceList=$work/sources.list"
  -o "Dir::Etc::SourceParts=$work/parts"
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache=$work/cache"
  -o "APT::Architectures::=amd64"
  -o "Acquire::Languages=none"
  -o "APT::Sandbox::User=root"
  -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
  -o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false"
  -o "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false"
  -o "Acquire::IndexTargets::deb::CNF::DefaultEnabled=false"
)
timeout 300 apt-get "${apt_opts[@]}" update -qq </dev/null

# nix-bin and the shared libraries it loads: every library package among its dependencies,
# without the Perl bindings and the login/PAM/debconf pieces a package install would need.
pkgs=$(apt-cache "${apt_opts[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts \
  --no-breaks --no-replaces --no-enhances nix-bin |
  grep -v '^[ <]' | sort -u | grep -E '^(nix-bin|lib)' |
  grep -vE 'perl|^libpam|^libsemanage|^libdebian|^libnewt|^libslang|^libtextwrap|^libdebconf|^libaudit|^libdb5|^libgdbm')
(cd "$work/debs" && timeout 300 apt-get "${apt_opts[@]}" download -qq $pkgs </dev/null)

rm -rf "$ROOT.new"
mkdir -p "$ROOT.new/bin"
for deb in "$work"/debs/*.deb; do
  dpkg -x "$deb" "$ROOT.new"
done
libs="$ROOT/usr/lib/x86_64-linux-gnu:$ROOT/lib/x86_64-linux-gnu"
cat >"$ROOT.new/bin/nix" <<EOF
#!/bin/sh
# Debian trixie's nix-bin, run through trixie's loader and libraries (see .ci/setup.d/30-nix-eval.sh).
exec $ROOT/usr/lib64/ld-linux-x86-64.so.2 --library-path $libs --argv0 nix $ROOT/usr/bin/nix "\$@"
EOF
chmod +x "$ROOT.new/bin/nix"
rm -rf "$ROOT"
mv "$ROOT.new" "$ROOT"
"$ROOT/bin/nix" --version
