"""Loading, checking and running the served TorchScript model.

The model's description (name, version, input shape and dtype, output shape) travels
inside the archive as the extra file ``model_meta.json``; for models without it the
service falls back to settings (``MODEL_INPUT_SHAPE``, ``MODEL_NAME``...).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from .settings import Settings

log = logging.getLogger(__name__)

META_FILE = "model_meta.json"
JIT_DEPRECATION = r"`torch\.jit\.\w+` is deprecated"
MODEL_FORMAT = {{ cookiecutter.model_format | json_str }}
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
    "int32": torch.int32,
}


class ModelLoadError(RuntimeError):
    """The model cannot be served; ``str()`` says why in one line."""


class InputError(ValueError):
    """A request's inputs do not fit the model; carries the HTTP status to answer."""

    def __init__(self, message: str, status_code: int = 422) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class ModelMeta:
    """What clients need to know about the served model."""

    name: str
    version: str
    sha256: str
    format: str
    device: str
    input_shape: tuple[int, ...]
    input_dtype: str
    output_shape: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view (shapes as lists)."""
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        data["output_shape"] = list(self.output_shape)
        return data


def resolve_device(requested: str) -> torch.device:
    """Map ``cpu``/``cuda``/``auto`` to a device; CUDA without a GPU is an error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(
            "DEVICE=cuda but no CUDA device is usable (torch.cuda.is_available() is False);"
            " set DEVICE=cpu or auto, or run with a GPU"
        )
    return torch.device(requested)


class LoadedModel:
    """A TorchScript module ready for inference, with its description."""

    def __init__(self, module: torch.jit.ScriptModule, meta: ModelMeta) -> None:
        self.module = module
        self.meta = meta
        self.device = torch.device(meta.device)
        self.dtype = DTYPES[meta.input_dtype]

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Run one forward pass on a batch; blocking, call it from a worker thread."""
        with torch.inference_mode():
            out = self.module(batch.to(self.device, non_blocking=True))
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"the model returned {type(out).__name__}, expected a tensor")
        return out.detach().to("cpu")

    def prepare(self, inputs: list[Any], max_items: int) -> torch.Tensor:
        """Turn a request's ``inputs`` into a batch tensor, or raise InputError."""
        return prepare_inputs(inputs, self.meta.input_shape, self.meta.input_dtype, max_items)


def prepare_inputs(
    inputs: list[Any], shape: tuple[int, ...], dtype_name: str, max_items: int
) -> torch.Tensor:
    """Check a list of items against the declared shape and dtype; return a tensor."""
    expected = list(shape)
    if len(inputs) == 0:
        raise InputError("inputs must hold at least one item")
    if len(inputs) > max_items:
        raise InputError(f"too many items: got {len(inputs)}, at most {max_items} per request", 413)
    for index, item in enumerate(inputs):
        if _has_bad_leaf(item):
            raise InputError(f"item {index} holds a value that is not a number")
    try:
        # float64 first: it holds every JSON number exactly enough to check it. The
        # checks run in NumPy: on a request-sized array its calls cost about a
        # microsecond each, torch's several.
        raw = np.asarray(inputs, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise InputError(
            f"inputs must be a list of items of shape {expected}, all of the same shape"
        ) from None
    if list(raw.shape[1:]) != expected:
        raise InputError(f"each item must have shape {expected}, got {list(raw.shape[1:])}")
    if not np.isfinite(raw).all():
        raise InputError("inputs must not contain NaN or infinity")
    target = DTYPES[dtype_name]
    if not target.is_floating_point:
        if not (raw == np.round(raw)).all():
            raise InputError(f"the model takes {dtype_name} inputs: every value must be whole")
        info = torch.iinfo(target)
        # max + 1 is a power of two, exact in float64; max itself may round up to it.
        if (raw < info.min).any() or (raw >= float(info.max + 1)).any():
            raise InputError(f"a value is out of range for {dtype_name}")
    elif (np.abs(raw) > torch.finfo(target).max).any():
        raise InputError(f"a value is out of range for {dtype_name}")
    return torch.from_numpy(raw).to(target)


def _has_bad_leaf(value: Any) -> bool:
    """True when a leaf is not an int or float (JSON true, strings, null, objects).

    torch would turn ``true`` into 1.0 silently and reject the others with an opaque
    message; checking first gives the caller a precise one.
    """
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, list):
            stack.extend(current)
        elif isinstance(current, bool) or not isinstance(current, (int, float)):
            return True
    return False


def sha256_of(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def load_model(settings: Settings) -> LoadedModel:
    """Read, verify, load and warm up the model named by the settings."""
    path = settings.model_path
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelLoadError(f"model file not found: {path}") from None
    except OSError as exc:
        raise ModelLoadError(f"model file {path} cannot be read: {exc.strerror}") from None
    digest = sha256_of(data)
    if settings.model_sha256 and digest != settings.model_sha256:
        raise ModelLoadError(
            f"model file {path} has sha256 {digest}, but MODEL_SHA256 is {settings.model_sha256}"
        )
    device = resolve_device(settings.device)
    torch.set_num_threads(settings.threads)
    extra = {META_FILE: ""}
    try:
        with warnings.catch_warnings():
            # Newer torch releases mark TorchScript deprecated; the format still loads,
            # and the warning would otherwise repeat in every container start-up log.
            warnings.filterwarnings("ignore", JIT_DEPRECATION, DeprecationWarning)
            # Loading from the bytes that were hashed: the file cannot change in between.
            module = torch.jit.load(  # type: ignore[no-untyped-call]
                io.BytesIO(data), map_location=device, _extra_files=extra
            )
    except Exception as exc:  # torch raises several types for a damaged archive
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(
            f"model file {path} is not a loadable TorchScript archive: {first_line}"
        ) from None
    module.eval()
    meta = _describe(settings, extra[META_FILE], digest, device, path.stem)
    model = LoadedModel(module, meta)
    output_shape = _warm_up(model)
    if meta.output_shape and tuple(meta.output_shape) != output_shape:
        raise ModelLoadError(
            f"the model returns items of shape {list(output_shape)}, but its metadata "
            f"declares {list(meta.output_shape)}"
        )
    model.meta = ModelMeta(**{**asdict(meta), "output_shape": output_shape})
    log.info("model loaded", extra={"model": model.meta.as_dict()})
    return model


def _describe(
    settings: Settings, raw_meta: str | bytes, digest: str, device: torch.device, stem: str
) -> ModelMeta:
    meta: dict[str, Any] = {}
    if raw_meta:
        try:
            meta = json.loads(raw_meta)
        except ValueError:
            raise ModelLoadError(f"{META_FILE} inside the model is not valid JSON") from None
    # The archive's own description wins; settings describe models that carry none.
    shape = tuple(meta.get("input_shape") or ()) or settings.input_shape_override
    if not shape:
        raise ModelLoadError(
            f"the model declares no input shape (no {META_FILE} in the archive):"
            " set MODEL_INPUT_SHAPE, e.g. MODEL_INPUT_SHAPE=3,224,224"
        )
    dtype = str(meta.get("input_dtype") or settings.model_input_dtype)
    if dtype not in DTYPES:
        raise ModelLoadError(f"unsupported input dtype {dtype!r} (one of {', '.join(DTYPES)})")
    return ModelMeta(
        name=str(settings.model_name or meta.get("name") or stem),
        version=str(settings.model_version or meta.get("version") or digest[:12]),
        sha256=digest,
        format=MODEL_FORMAT,
        device=str(device),
        input_shape=tuple(int(n) for n in shape),
        input_dtype=dtype,
        output_shape=tuple(int(n) for n in meta.get("output_shape") or ()),
    )


def _warm_up(model: LoadedModel) -> tuple[int, ...]:
    """One forward pass on zeros: compiles lazy paths and finds the output shape."""
    batch = torch.zeros((1, *model.meta.input_shape), dtype=model.dtype)
    try:
        out = model.forward(batch)
    except Exception as exc:  # any failure here means the model cannot serve
        raise ModelLoadError(
            f"warm-up forward pass failed for input shape {list(model.meta.input_shape)}: "
            f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
        ) from None
    if out.ndim == 0 or out.shape[0] != 1:
        raise ModelLoadError("the model must return one output row per input item")
    return tuple(int(n) for n in out.shape[1:])
