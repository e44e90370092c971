"""Time-travel scenarios: the seed systems' stories told through ispbill's use cases."""
