"""The HTTP data plane: client and upstream protocols, exchanges, listeners."""

__all__: list[str] = []
