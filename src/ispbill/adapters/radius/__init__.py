"""RADIUS at the edge: the CoA/Disconnect sender (pyrad) and the FreeRADIUS configuration."""
