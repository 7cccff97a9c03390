"""What to measure: frozen variants, matrices expanded from TOML profiles, run settings and shards."""
