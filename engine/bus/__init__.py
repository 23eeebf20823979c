"""The bus: event catalog, commands, topics, codec, pub/sub, control plane, proxy."""
