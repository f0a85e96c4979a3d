"""Training GLDFN on HR images degraded on the fly."""
