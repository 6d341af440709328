from typing import Any, Callable

__version__: str

class StrataError(Exception): ...
class RecipeError(StrataError): ...
class RunError(StrataError): ...

def run(
    recipe: str,
    activity: Any = None,
    counts: Any = None,
    population: Any = None,
    scale: float | None = None,
    seed: int | None = None,
    threads: int | None = None,
    mapping: str | None = None,
    progress: Callable[[str, int, int | None, str], None] | None = None,
    sampling: str | None = None,
) -> tuple[list[tuple[str, Any]], str]: ...
def verify(
    recipe: str,
    scale: float | None = None,
    seed: int | None = None,
    threads: int | None = None,
    sampling: str | None = None,
) -> tuple[Any, bool]: ...
def diff(
    recipe_a: str, recipe_b: str, scale: float | None = None, seed: int | None = None
) -> tuple[Any, list[str]]: ...
def check(recipe: str) -> list[tuple[str, str, str, str]]: ...
def plugins(plugin_paths: list[str] = ...) -> list[tuple[str, str, str, str, str]]: ...
def csv(frame: Any, float_precision: int = 6) -> bytes: ...
