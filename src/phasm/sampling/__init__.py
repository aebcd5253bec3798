"""phasm.sampling layer (see DESIGN.md)."""
