"""Live drops: the creator opens and closes a drop; an overlay and a per-viewer SSE feed show it as it sells."""
