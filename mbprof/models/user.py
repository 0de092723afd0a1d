"""Your own model: an import path (``mypkg.models:build`` or ``mypkg.models:MyNet``, whose
code this imports and runs; the current directory first) or an ``nn.Module`` instance given
from Python (``hold``). mbprof's knobs reach a callable only through parameters named
``width``, ``depth`` and ``num_classes``; without one, that knob must stay at its default.
Sizing falls back from the meta device to per-parameter meta moves to a real build counted
against free memory (docs/models.md)."""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import re
import sys
from collections.abc import Callable
from typing import Any

from torch import nn

from mbprof.core.errors import MbprofError, contained
from mbprof.models._registry import ModelInfo

KNOBS = {"width": 1.0, "depth": 1.0, "num_classes": 1000}
_OPTION = {"width": "--width", "depth": "--depth", "num_classes": "--classes"}
_DOTTED = r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*"
_CACHE: dict[str, ModelInfo] = {}


def _import_module(module: str, path: str) -> Any:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        with contained(path, f"importing {module!r}"):  # sys.exit at import is an error
            return importlib.import_module(module)
    except MbprofError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            raise MbprofError(
                f"model {path!r}: no module named {exc.name!r} (looked in the current "
                "directory and on sys.path; install the package or run from its directory)"
            ) from exc
        raise MbprofError(
            f"model {path!r}: importing {module!r} failed: it imports {exc.name!r}, "
            "which is not installed"
        ) from exc
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise MbprofError(
            f"model {path!r}: importing {module!r} raised {type(exc).__name__}: {first}"
        ) from exc


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
    target: Any = _import_module(module_name, path)
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


def _signature(target: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(target)
    except (TypeError, ValueError):  # some builtins and C extensions have none
        return None


def _accepted_knobs(signature: inspect.Signature | None) -> set[str]:
    """mbprof knobs the callable names as keyword-capable parameters (``**kwargs`` is not
    taken as accepting them: it often forwards to something that does not)."""
    if signature is None:
        return set()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {name for name, p in signature.parameters.items() if name in KNOBS and p.kind in kinds}


def _make_builder(
    path: str, target: Callable[..., Any], signature: inspect.Signature | None, accepted: set[str]
) -> Callable[..., nn.Module]:
    def build(**given: Any) -> nn.Module:
        knobs = {k: given.pop(k) for k in list(given) if k in KNOBS}
        call = {k: v for k, v in knobs.items() if k in accepted}
        call.update(given)
        if signature is not None:
            try:
                signature.bind(**call)
            except TypeError as exc:
                raise MbprofError(
                    f"model {path!r} cannot be called with {_describe(call)}: {exc} "
                    "(give its arguments with --arg key=value)"
                ) from None
        try:
            with contained(path, "being built"):  # sys.exit in the builder is an error
                model = target(**call)
        except MbprofError:
            raise
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            where = " (on the meta device, sizing it)" if _on_meta() else ""
            raise MbprofError(
                f"model {path!r} raised {type(exc).__name__} while being built{where}: {first}"
            ) from exc
        if not isinstance(model, nn.Module):
            raise MbprofError(
                f"model {path!r} returned an object of type {type(model).__name__}, "
                "not a torch.nn.Module"
            )
        return model

    if signature is not None:  # mbprof checks --arg names against the user's signature
        build.__signature__ = signature  # type: ignore[attr-defined]
    return build


def _on_meta() -> bool:
    import torch

    return torch.empty(0).device.type == "meta"


def _describe(call: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in call.items()) or "no arguments"


def _validator(path: str, accepted: set[str]) -> Callable[[float, float, int], None]:
    def validate(width: float, depth: float, num_classes: int) -> None:
        for knob, value in (("width", width), ("depth", depth), ("num_classes", num_classes)):
            if knob not in accepted and value != KNOBS[knob]:
                raise MbprofError(
                    f"model {path!r} takes no {knob!r} parameter, so {_OPTION[knob]} must be "
                    f"{KNOBS[knob]:g}, not {value:g} (pass the model's own argument with "
                    "--arg key=value)"
                )

    return validate


def user_model_info(path: str) -> ModelInfo:
    """Import ``path`` and describe it as a model; refused with MbprofError (one line) when
    it does not name a class or factory of an nn.Module."""
    if path in _CACHE:
        return _CACHE[path]
    target = resolve(path)
    signature = _signature(target)
    accepted = _accepted_knobs(signature)
    doc = (inspect.getdoc(target) or "").strip().splitlines()
    info = ModelInfo(
        name=path,
        factory=_make_builder(path, target, signature, accepted),
        family="user model",
        summary=doc[0] if doc else f"your model {path}",
        reference=f"imported from {path}",
        has_depth="depth" in accepted,
        validate=_validator(path, accepted),
    )
    _CACHE[path] = info
    return info


def hold(module: nn.Module, label: str | None = None) -> str:
    """Make the instance ``module`` the model named ``label`` (its class name by default) in
    this process, replacing what that label held; returns the label. It takes no knobs
    (width, depth and classes stay at their defaults) and no builder arguments."""
    from mbprof.models import HELD, get_model_info

    name = type(module).__name__ if label is None else label
    if not isinstance(name, str) or not re.fullmatch(r"[^\s:]+", name):
        raise MbprofError(
            f"name: {name!r} is not a label for a module; give a word without spaces or ':'",
            field="name",
        )
    if name not in HELD:
        try:
            get_model_info(name)
        except MbprofError:
            pass
        else:
            raise MbprofError(
                f"name: {name!r} is a registered model's name; label the module otherwise",
                field="name",
            )

    def build(width: float = 1.0, num_classes: int = 1000) -> nn.Module:
        return module

    HELD[name] = ModelInfo(
        name=name,
        factory=build,
        family="module",
        summary=f"a {type(module).__name__} instance given from Python",
        reference="an nn.Module given from Python",
        validate=_validator(name, set()),
    )
    return name


# --------------------------------------------------------------------------- a library's models

from mbprof.models import HUBS, WEIGHTS_ARGS, hub_library  # noqa: E402


def _hub_module(name: str, library: str) -> Any:
    import torch

    module = HUBS[library][0]
    try:
        with contained(name, f"importing {module!r}"):
            return importlib.import_module(module)
    except MbprofError:
        raise
    except ModuleNotFoundError as exc:
        missing = exc.name or library
        raise MbprofError(
            f"model {name!r}: {missing} is not installed; install it with: pip install {missing}"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - torchvision built for another torch raises RuntimeError
        first = (str(exc).strip().splitlines() or [""])[0]
        raise MbprofError(
            f"model {name!r}: {library} is installed but does not import beside torch "
            f"{torch.__version__} ({type(exc).__name__}: {first}); install the releases made "
            f"for each other, e.g. pip install -U torch torchvision{' timm' * (library == 'timm')}"
        ) from exc


def hub_model_info(name: str) -> ModelInfo:
    """``timm/NAME`` or ``torchvision/NAME`` as a model: refused in one line when the
    library is missing or does not import, or has no such model (with close names)."""
    from mbprof.core.errors import UnknownModelError

    if name in _CACHE:
        return _CACHE[name]
    library = hub_library(name) or ""
    model = name.partition("/")[2]
    _, lister, maker, no_weights = HUBS[library]
    module = _hub_module(name, library)
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

    info = ModelInfo(
        name=name,
        factory=_make_builder(name, target, inspect.signature(target), {"num_classes"}),
        family=library,
        summary=f"{library}'s {model}, built without weights",
        reference=f"{library} {getattr(module, '__version__', '')}".strip(),
        validate=_validator(name, {"num_classes"}),
    )
    _CACHE[name] = info
    return info
