//! `labup export systemd` (being built: see the engines table in DESIGN.md).
