"""Remotes: a folder or an S3 bucket holding the same packs, indexes and manifests as a store (docs/remotes.md)."""
