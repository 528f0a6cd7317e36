#!/usr/bin/env bash
# Installs the Nix tools that tests/nix.rs drives: nix-instantiate (Debian's nix-bin),
# nixfmt and deadnix from crates.io. nixfmt (RFC 166) is nixpkgs' formatter, the one the
# flake's `nix fmt` (nixfmt-tree) and its nix-lint check run; the Haskell original is on no
# registry reachable here, so CI uses nixfmt_rs, its Rust port, which formats nixpkgs' lib
# and crane byte for byte as nixfmt does. deadnix is the program nixpkgs ships.
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
  shift 2
  command -v "$bin" >/dev/null 2>&1 && return 0
  cargo install --quiet --locked "$crate" "$@" </dev/null ||
    cargo install --quiet "$crate" "$@" </dev/null
}
# Pinned: the version whose output was compared with nixfmt's.
cargo_install nixfmt_rs nixfmt --version 0.5.3
cargo_install deadnix deadnix

hash -r
nix-instantiate --version
nixfmt --version
deadnix --version
