"""``MODULE:FUNCTION`` resolved to the run function (:func:`load_function`).

``MODULE`` is a dotted module name (found from the working directory too,
as ``python -m`` finds it) or a path to a ``.py`` file; a file's module is
importable by worker processes under its own name when it can be, else
its functions are pickled by value.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable
from typing import Any

import click
import cloudpickle

from .context import one_line

__all__ = ["load_function"]

# Set on modules loaded from a file, so a later load of a file with the same
# name may replace them (and only them) in sys.modules.
_FILE_MARK = "__riomucho_dask_file__"


def _ensure_cwd_on_path() -> None:
    # As ``python -m`` does: MODULE may live in the working directory, which
    # a console script does not put on sys.path.  Spawned worker processes
    # inherit sys.path, so they find it too.
    cwd = os.getcwd()
    if "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)


def _prepend_path(directory: str) -> None:
    if directory in sys.path:
        sys.path.remove(directory)
    sys.path.insert(0, directory)


def _is_path(module: str) -> bool:
    return module.endswith(".py") or "/" in module or os.sep in module


def _load_file(path: str):
    """Import the Python file ``path`` and return ``(module, importable)``.

    The module is named after the file (``funcs.py`` -> ``funcs``) and its
    directory is put first on ``sys.path``, so worker processes re-import it
    by that name.  When the name is taken by another module (``json.py``) or
    is not a module name (``my.funcs.py``), it gets a private name and its
    functions are pickled by value instead; ``importable`` is then False.
    """
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise click.ClickException(f"module file {path!r} does not exist")
    directory = os.path.dirname(path)
    name = os.path.splitext(os.path.basename(path))[0]
    existing = sys.modules.get(name)
    importable = name.isidentifier() and (
        existing is None or getattr(existing, _FILE_MARK, None) is not None
    )
    if not importable:
        digest = hashlib.sha1(path.encode()).hexdigest()[:12]
        name = f"_riomucho_dask_user_{re.sub(r'[^0-9A-Za-z_]', '_', name)}_{digest}"
        existing = sys.modules.get(name)
    _prepend_path(directory)  # also lets the module import its neighbours
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise click.ClickException(f"cannot import {path!r}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    setattr(module, _FILE_MARK, path)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        if existing is not None:
            sys.modules[name] = existing
        else:
            sys.modules.pop(name, None)
        raise click.ClickException(
            one_line(f"cannot import {path!r}: {type(err).__name__}: {err}")
        ) from err
    if not importable:
        cloudpickle.register_pickle_by_value(module)
    return module, importable


def _import_module(name: str):
    _ensure_cwd_on_path()
    try:
        return importlib.import_module(name)
    except Exception as err:
        raise click.ClickException(
            one_line(f"cannot import module {name!r}: {type(err).__name__}: {err}")
        ) from err


def load_function(spec: str) -> tuple[Callable, str | None]:
    """Resolve ``MODULE:FUNCTION`` to the function.

    Parameters
    ----------
    spec : str
        ``package.module:function`` or ``path/to/file.py:function``;
        ``FUNCTION`` may be dotted (``module:Class.method``).

    Returns
    -------
    function : callable
    upload : str or None
        The module's file when it was loaded from a path under its own name
        (a dask.distributed cluster can be sent it), else None.

    Raises
    ------
    click.ClickException
        The spec is malformed, the module cannot be imported, or it has no
        such callable.
    """
    module_name, sep, attribute = spec.rpartition(":")
    if not sep or not module_name or not attribute or _is_path(attribute):
        raise click.ClickException(
            f"{spec!r} is not MODULE:FUNCTION (a dotted module name or a .py file, a colon, "
            "and the function's name)"
        )
    upload = None
    if _is_path(module_name):
        module, importable = _load_file(module_name)
        where = repr(os.path.abspath(module_name))
        if importable:
            upload = module.__file__
    else:
        module = _import_module(module_name)
        where = f"module {module_name!r}"
    obj: Any = module
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise click.ClickException(f"{where} has no attribute {attribute!r}") from None
    if not callable(obj):
        raise click.ClickException(
            f"{where}:{attribute} is a {type(obj).__name__}, not a function"
        )
    return obj, upload
