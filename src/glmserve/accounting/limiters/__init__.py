"""Per-key rate limiters: in memory (one replica) or in Redis (shared by replicas)."""
