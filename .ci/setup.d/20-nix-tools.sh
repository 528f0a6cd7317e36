#!/usr/bin/env bash
# Installs the Nix tools that tests/nix.rs drives: nix-instantiate (Debian's nix-bin),
# nixpkgs-fmt and deadnix (crates.io; same programs nixpkgs ships, so CI and
# `nix flake check` agree on formatting and lint).
# Runs as root on a fresh Debian machine, with no stdin; safe to run again.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

if ! command -v nix-instantiate >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nix-bin </dev/null >/dev/null
fi

# --locked keeps the builds reproducible; fall back only when a crate's own lock no
# longer builds with the installed toolchain.
cargo_install() {
  local crate=$1 bin=$2
  command -v "$bin" >/dev/null 2>&1 && return 0
  cargo install --quiet --locked "$crate" </dev/null ||
    cargo install --quiet "$crate" </dev/null
}
cargo_install nixpkgs-fmt nixpkgs-fmt
cargo_install deadnix deadnix

hash -r
nix-instantiate --version
# nixpkgs-fmt 1.3 exits 1 after printing its version (and after --help): check that it
# formats instead.
echo '{ }' | nixpkgs-fmt >/dev/null
echo "nixpkgs-fmt: $(command -v nixpkgs-fmt)"
deadnix --version
