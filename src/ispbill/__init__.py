"""ispbill: prepaid-first billing and service control for Internet service providers."""

__version__ = "0.1.0"
