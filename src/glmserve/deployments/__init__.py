"""Deployments of a public model: balancing, circuit breakers, retries and fallbacks."""
