"""Small non-app packages every layer may import: the realtime bus (``axisor_bus.publish``)."""
