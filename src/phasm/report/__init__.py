"""phasm.report layer (see DESIGN.md)."""
