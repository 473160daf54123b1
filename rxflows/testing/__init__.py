"""Testing support for rxflows users: virtual time and marble diagrams."""

from ._loop import VirtualTimeLoop as VirtualTimeLoop

__all__ = ["VirtualTimeLoop"]
