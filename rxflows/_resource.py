"""The one base of rxflows' closable resources: ``async with`` closes with ``aclose()``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

__all__ = ["AsyncResource"]


class AsyncResource(ABC):
    """Something you close with ``await x.aclose()`` (idempotent), or by leaving
    ``async with x:``; closing releases everything it holds."""

    __slots__ = ()

    @abstractmethod
    async def aclose(self) -> None:
        """Close the resource; closing again does nothing."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
