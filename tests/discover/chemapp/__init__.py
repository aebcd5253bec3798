"""A user's package that drives the fake compiled chemistry library (see ../fakechem.py)."""
