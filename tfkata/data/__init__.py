"""Data the harness owns: loaders, downloads, checksums and caches (the katas own what the slides teach)."""
