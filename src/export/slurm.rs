//! `labup export slurm` (being built: see the engines table in DESIGN.md).
