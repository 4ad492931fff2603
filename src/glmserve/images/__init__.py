"""Image inputs: decoding and checking them, and fetching http(s) images safely."""
