"""What every control-plane loop shares: the :class:`~.loop.Loop` base and the settings handed to each
one (:mod:`.settings`). Every controller package imports from here; nothing here imports them."""
