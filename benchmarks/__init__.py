"""Benchmarks for git-model: a checkpoint-series generator and a cp / Git LFS / git-model comparison."""
