{%- set fmt = cookiecutter.model_format -%}
{%- set image = cookiecutter.task == "image-classification" -%}
{%- set fmt_name = {"state_dict": "a state_dict in a safetensors file", "torchscript": "a TorchScript archive", "export": "a torch.export program (.pt2)"}[fmt] -%}
"""Your model, its inputs and its outputs: the one module to edit to serve your own model.

The service imports three names from here: ``Input`` and ``Output``, the pydantic
models of one input item and one output item (they validate requests, shape answers
and drive the OpenAPI page at ``/docs``), and ``Handler``, whose methods it calls in
this order (``handler_base.py`` has the details; every other module is framework):

    load(path, device)   once, at start-up: read the model file (sha256 already checked)
    example()            once, at start-up: an item that must get through every step
    preprocess(item)     per item: an Input to what the model takes for one item
    predict(batch)       per forward pass, several requests' items batched together
    postprocess(row)     per item: one row of the model's output to an Output

This project serves a model saved as {{ fmt_name }}.
{%- if image %}
It classifies images: a JPEG or PNG in, the most likely labels with their scores out.
The metadata stored with the model gives its input size, normalisation and labels.
{%- else %}
It takes and returns numeric items (nested lists of numbers); the shape and dtype of
an item come from the metadata stored with the model (or MODEL_INPUT_SHAPE and
MODEL_INPUT_DTYPE).
{%- endif %}
docs/your-model.md walks through serving a model of your own.
"""

from __future__ import annotations

from pathlib import Path
from typing import {{ "Annotated, " if image }}Any

import torch
{%- if image %}
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
{%- else %}
from pydantic import ConfigDict, RootModel
{%- endif %}

from . import formats, {{ "images" if image else "tensors" }}
from .handler_base import BaseHandler, Loaded
{%- if fmt == "state_dict" %}
from .networks import {{ "cnn" if image else "mlp" }}
{%- endif %}
{%- if image %}

#: Normalisation used when the model's metadata gives none (ImageNet's statistics).
DEFAULT_MEAN = (0.485, 0.456, 0.406)
DEFAULT_STD = (0.229, 0.224, 0.225)


def _example_image(schema: dict[str, Any]) -> None:
    """Put a small real PNG in the OpenAPI example (made at run time, not stored here)."""
    schema["examples"] = [{"image": images.base64_png(8, 8)}]


class Input(BaseModel):
    """One image to classify."""

    # Bytes are written back as base64, so an item's JSON is the same whether the
    # image came in a JSON body or as an upload (the prediction log hashes it).
    model_config = ConfigDict(
        extra="forbid", ser_json_bytes="base64", json_schema_extra=_example_image
    )

    image: Annotated[
        bytes,
        BeforeValidator(images.from_base64),
        WithJsonSchema({"type": "string", "contentEncoding": "base64"}),
    ] = Field(
        description="A JPEG or PNG image: base64 text in a JSON body, or a file uploaded "
        "as the multipart form field `image`."
    )


class Label(BaseModel):
    """One label and how likely the model finds it."""

    label: str
    score: float = Field(description="Probability (softmax of the model's logits), 0 to 1.")


class Output(BaseModel):
    """The most likely labels of one image, best first."""

    labels: list[Label]


class Handler(BaseHandler[Input, Output]):
    """Classifies images with the model's labels; resizing and normalisation from its metadata."""

    # Decoding an image takes a fraction of a millisecond to several: off the event loop.
    preprocess_in_thread = True
    upload_field = "image"

    def load(self, path: Path, device: torch.device) -> Loaded:
        """Read the model file onto ``device``."""
{%- if fmt == "state_dict" %}
        # The network is built from the sizes stored with the weights. For a model of
        # your own, return your module instead: ``build=lambda meta: MyNet()``.
        return formats.read(path, device, build=lambda meta: cnn(**meta["config"]))
{%- else %}
        return formats.read(path, device)
{%- endif %}

    @property
    def size(self) -> tuple[int, int]:
        """The model's input (height, width): the last two numbers of its input shape."""
        shape = self.meta.input_shape
        if len(shape) != 3:
            raise ValueError(
                f"the model's input shape is {list(shape)}; an image model takes [3, height, "
                "width] (set it in the model's metadata, or MODEL_INPUT_SHAPE)"
            )
        return shape[1], shape[2]

    def example(self) -> Input:
        """A plain grey image of the model's input size."""
        height, width = self.size
        return Input(image=images.png(width, height))

    def preprocess(self, item: Input) -> torch.Tensor:
        """Decode and check the image, resize and crop it, normalise it: ``[3, H, W]``."""
        image = images.load(item.image, max_pixels=self.settings.max_image_pixels, size=self.size)
        mean = self.meta.extra.get("mean", DEFAULT_MEAN)
        std = self.meta.extra.get("std", DEFAULT_STD)
        return images.to_tensor(image, self.size, mean, std)

    def postprocess(self, row: torch.Tensor) -> Output:
        """The ``TOP_K`` most likely labels, with softmax scores."""
        scores = row.float().softmax(0)
        top = scores.topk(min(self.settings.top_k, scores.numel()))
        names = self.meta.labels or tuple(str(index) for index in range(scores.numel()))
        return Output(
            labels=[
                Label(label=names[index], score=score)
                for score, index in zip(top.values.tolist(), top.indices.tolist(), strict=True)
            ]
        )
{%- else %}


class Input(RootModel[list[Any]]):
    """One item: nested lists of numbers of the model's input shape (``GET /model``).

    ``preprocess`` checks it against the model's shape and dtype; once the model is
    loaded, the OpenAPI page shows that exact shape.
    """

    model_config = ConfigDict(json_schema_extra={"examples": [[0.5, -1.0, 2.0, 0.25]]})


class Output(RootModel[list[Any]]):
    """One row of the model's output: nested lists of numbers (NaN and infinity as null)."""


class Handler(BaseHandler[Input, Output]):
    """Serves a tensor-in, tensor-out model: items are checked, stacked and run as they are."""

    def load(self, path: Path, device: torch.device) -> Loaded:
        """Read the model file onto ``device``."""
{%- if fmt == "state_dict" %}
        # The network is built from the sizes stored with the weights. For a model of
        # your own, return your module instead: ``build=lambda meta: MyNet()``.
        return formats.read(path, device, build=lambda meta: mlp(**meta["config"]))
{%- else %}
        return formats.read(path, device)
{%- endif %}

    def example(self) -> Input:
        """An item of zeros of the model's input shape."""
        return Input(tensors.zeros(self.meta.input_shape))

    def preprocess(self, item: Input) -> torch.Tensor:
        """Check the item against the model's input shape and dtype; return it as a tensor."""
        return tensors.to_tensor(item.root, self.meta.input_shape, self.meta.input_dtype)

    def postprocess(self, row: torch.Tensor) -> Output:
        """The row as nested lists of numbers."""
        return Output(row.tolist())

    def openapi_schemas(self) -> dict[str, dict[str, Any]]:
        """The exact shapes of an input item and an output row, from the model."""
        item = tensors.schema(self.meta.input_shape, self.meta.input_dtype)
        return {
            "Input": {**item, "examples": [self.example().root]},
            "Output": tensors.schema(self.meta.output_shape, "float32"),
        }
{%- endif %}
