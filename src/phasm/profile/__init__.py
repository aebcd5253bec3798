"""phasm.profile layer (see DESIGN.md)."""
