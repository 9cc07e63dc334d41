"""The HTTP data plane: client and upstream protocols, exchanges, replies, listeners."""

__all__: list[str] = []
