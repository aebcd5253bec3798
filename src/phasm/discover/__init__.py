"""phasm.discover layer (see DESIGN.md)."""
