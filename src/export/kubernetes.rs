//! `labup export kubernetes` (being built: see the engines table in DESIGN.md).
