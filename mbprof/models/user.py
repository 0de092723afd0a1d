"""Your own model: an import path (``mypkg.models:build``, imported from the current directory
first), an ``nn.Module`` given from Python (``hold``) or a library's (``timm/NAME``). mbprof's
knobs reach it only through parameters named ``width``, ``depth`` and ``num_classes``."""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import os
import re
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from mbprof.core.errors import MbprofError, UnknownModelError, contained, first_line
from mbprof.core.parsing import refused
from mbprof.models import HELD, HUBS, KNOBS, WEIGHTS_ARGS, ModelInfo, hub_library, list_models

_DOTTED = r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*"


def _import(name: str, module: str, missing: Callable[[str | None], str], failed: str) -> Any:
    """Import ``module``; a module not found is said by ``missing``, another error by ``failed``."""
    try:
        with contained(name, f"importing {module!r}"):
            return importlib.import_module(module)
    except MbprofError:
        raise
    except ModuleNotFoundError as exc:
        raise MbprofError(f"model {name!r}: {missing(exc.name)}") from exc
    except Exception as exc:  # noqa: BLE001 - torchvision built for another torch raises RuntimeError
        error = f"{type(exc).__name__}: {first_line(exc)}"
        raise MbprofError(f"model {name!r}: {failed.replace('{error}', error)}") from exc


def resolve(path: str) -> Callable[..., Any]:
    """The class or factory named by ``module:attribute`` (attribute may be dotted)."""
    module_name, _, attribute = path.partition(":")
    if module_name.endswith(".py") or "/" in module_name or os.sep in module_name:
        raise MbprofError(
            f"model {path!r}: give a module import path such as mypkg.models:build, not a file name"
        )
    if not (re.fullmatch(_DOTTED, module_name) and re.fullmatch(_DOTTED, attribute)):
        raise MbprofError(
            f"model {path!r} is not an import path: write module:attribute, "
            "such as mypkg.models:build"
        )
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)

    def missing(name: str | None) -> str:
        if name and (module_name == name or module_name.startswith(name + ".")):
            return (
                f"no module named {name!r} (looked in the current directory and on sys.path; "
                "install the package or run from its directory)"
            )
        return f"importing {module_name!r} failed: it imports {name!r}, which is not installed"

    target = _import(path, module_name, missing, f"importing {module_name!r} raised {{error}}")
    where = module_name
    for part in attribute.split("."):
        if not hasattr(target, part):
            names = [n for n in dir(target) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise MbprofError(f"model {path!r}: {where!r} has no attribute {part!r}{hint}")
        target = getattr(target, part)
        where = f"{where}.{part}"
    if not callable(target):
        raise MbprofError(
            f"model {path!r} names an object of type {type(target).__name__}, not a class "
            "or function that builds an nn.Module"
        )
    if inspect.isclass(target) and not issubclass(target, nn.Module):
        raise MbprofError(f"model {path!r} is a class but not a torch.nn.Module subclass")
    return target


def _model_info(name: str, target: Callable[..., Any], **meta: Any) -> ModelInfo:
    """``target`` takes the knobs its signature names (``**kwargs`` does not count: it often
    forwards to something that does not take them); the others must stay at their defaults."""
    try:
        signature: inspect.Signature | None = inspect.signature(target)
    except (TypeError, ValueError):  # some builtins and C extensions have none
        signature = None
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = signature.parameters.items() if signature else ()
    accepted = {k for k, p in params if k in KNOBS and p.kind in kinds}

    def build(**given: Any) -> nn.Module:
        call = {k: v for k, v in given.items() if k not in KNOBS or k in accepted}
        if signature is not None:
            try:
                signature.bind(**call)
            except TypeError as exc:
                shown = ", ".join(f"{k}={v!r}" for k, v in call.items()) or "no arguments"
                raise MbprofError(
                    f"model {name!r} cannot be called with {shown}: {exc} "
                    "(give its arguments with --arg key=value)"
                ) from None
        try:
            with contained(name, "being built"):  # sys.exit in the builder is an error
                model = target(**call)
        except MbprofError:
            raise
        except Exception as exc:
            where = " (on the meta device, sizing it)" if torch.empty(0).is_meta else ""
            raise MbprofError(
                f"model {name!r} raised {type(exc).__name__} while being built{where}: "
                f"{first_line(exc)}"
            ) from exc
        if not isinstance(model, nn.Module):
            raise MbprofError(
                f"model {name!r} returned an object of type {type(model).__name__}, "
                "not a torch.nn.Module"
            )
        return model

    if signature is not None:  # mbprof checks --arg names against the user's signature
        build.__signature__ = signature  # type: ignore[attr-defined]

    def validate(width: float, depth: float, num_classes: int) -> None:
        for knob, value in (("width", width), ("depth", depth), ("num_classes", num_classes)):
            if knob not in accepted and value != KNOBS[knob]:
                raise MbprofError(
                    f"model {name!r} takes no {knob!r} parameter, so --{knob.replace('num_', '')} must be "
                    f"{KNOBS[knob]:g}, not {value:g} (pass the model's own argument with "
                    "--arg key=value)"
                )

    return ModelInfo(name, build, has_depth="depth" in accepted, validate=validate, **meta)


@functools.cache
def user_model_info(path: str) -> ModelInfo:
    """Import ``path`` and describe it as a model (MbprofError when it builds no nn.Module)."""
    target = resolve(path)
    doc = (inspect.getdoc(target) or "").strip().splitlines()
    return _model_info(
        path,
        target,
        family="user model",
        summary=doc[0] if doc else f"your model {path}",
        reference=f"imported from {path}",
    )


def hold(module: nn.Module, label: str | None = None) -> str:
    """Make the instance ``module`` the model named ``label`` (its class name by default) in
    this process, replacing what that label held; returns the label. It takes no knobs
    (width, depth and classes stay at their defaults) and no builder arguments."""
    name = type(module).__name__ if label is None else label
    if not isinstance(name, str) or not re.fullmatch(r"[^\s:]+", name):
        raise refused(
            "name", f"{name!r} is not a label for a module; give a word without spaces or ':'"
        )
    if name not in HELD and (name in list_models() or hub_library(name)):
        raise refused("name", f"{name!r} is a registered model's name; label the module otherwise")
    HELD[name] = _model_info(
        name,
        lambda: module,
        family="module",
        summary=f"a {type(module).__name__} instance given from Python",
        reference="an nn.Module given from Python",
    )
    return name


@functools.cache
def hub_model_info(name: str) -> ModelInfo:
    """``timm/NAME`` or ``torchvision/NAME`` as a model, refused if it cannot be built."""
    library, _, model = name.partition("/")
    module_name, lister, maker, no_weights = HUBS[library]
    module = _import(
        name,
        module_name,
        lambda missing: (
            f"{missing or library} is not installed; install it with: pip install "
            f"{missing or library}"
        ),
        f"{library} is installed but does not import beside torch {torch.__version__} ({{error}}); "
        "install the releases made for each other, e.g. pip install -U torch "
        f"torchvision{' timm' * (library == 'timm')}",
    )
    known = list(getattr(module, lister)())
    if model.partition(".")[0] not in known:  # timm's "name.tag" names a pretrained config
        close = difflib.get_close_matches(model, known, n=3)
        hint = f"; did you mean {' or '.join(f'{library}/{c}' for c in close)}?" if close else ""
        raise UnknownModelError(f"{library} has no model {model!r}{hint}")

    def target(num_classes: int = 1000, **kwargs: Any) -> nn.Module:
        for key in set(kwargs) & set(WEIGHTS_ARGS):
            raise MbprofError(
                f"model {name!r} is built without weights: argument {key!r} is not taken "
                "(load a local checkpoint with --weights)"
            )
        return getattr(module, maker)(model, num_classes=num_classes, **no_weights, **kwargs)

    return _model_info(
        name,
        target,
        family=library,
        summary=f"{library}'s {model}, built without weights",
        reference=f"{library} {getattr(module, '__version__', '')}".strip(),
    )
