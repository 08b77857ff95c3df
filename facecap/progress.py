"""Progress of long work: the library reports it, the application decides whether and how to show it.

Library code wraps its long loops in :func:`track` (or :func:`progress` where it counts by hand). Both
cost nothing and show nothing until the application chooses a display with :func:`show_progress`, as
``logging`` leaves handlers to the application. The ``facecap`` command shows tqdm bars; a notebook or
a render farm's wrapper may show its own, or none.
"""

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Protocol, TypeVar

__all__ = ["Bar", "progress", "track", "show_progress"]

T = TypeVar("T")


class Bar(Protocol):
    """What a display hands back for one piece of work (tqdm's bars are such displays)."""

    def update(self, n: int = 1) -> object: ...

    def close(self) -> object: ...


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


_display: Callable[..., Bar] | None = None


def show_progress(display: Callable[..., Bar] | None) -> None:
    """Show progress with ``display(total=, desc=, unit=)`` from now on (e.g. ``tqdm``); None: show none."""
    global _display
    _display = display


@contextmanager
def progress(total: int, desc: str, unit: str = "it") -> Iterator[Bar]:
    """A bar for ``total`` units of work named ``desc``: advance it with ``update(n)``."""
    bar = _display(total=total, desc=desc, unit=unit) if _display is not None else _Silent()
    try:
        yield bar
    finally:
        bar.close()


def track(items: Iterable[T], desc: str, unit: str = "it", total: int | None = None) -> Iterator[T]:
    """``items`` one by one, each counted as done when the caller asks for the next."""
    count = total if total is not None else len(items)  # type: ignore[arg-type]
    with progress(count, desc, unit) as bar:
        for item in items:
            yield item
            bar.update(1)
