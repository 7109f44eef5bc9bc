{%- set image = cookiecutter.task == "image-classification" -%}
"""The demo model's network{{ "" if cookiecutter.model_format == "state_dict" else ", used by scripts/make_demo_model.py" }}.

{% if cookiecutter.model_format == "state_dict" -%}
``handler.py`` builds it from the sizes stored with the weights; to serve your own
model, build your own module there instead (or change this one).
{%- else -%}
The {{ cookiecutter.model_format }} archive carries the network's code, so the service does not import this
module: it only describes the demo model that ``scripts/make_demo_model.py`` writes.
{%- endif %}
Plain ``nn.Sequential`` stacks of torch's own layers: scripted, exported or rebuilt
from a state_dict alike, and the files they are saved in do not depend on where the
project lives.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn
{% if image %}

def cnn(channels: Sequence[int], classes: int) -> nn.Sequential:
    """A small image classifier: 3x3 conv blocks that halve the size, then a linear head.

    Takes a batch of ``[3, H, W]`` images and returns one logit per class.
    """
    layers: list[nn.Module] = []
    width = 3
    for out in channels:
        layers += [nn.Conv2d(width, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        width = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes)]
    return nn.Sequential(*layers)
{% else %}

def mlp(features: int, hidden: Sequence[int], outputs: int) -> nn.Sequential:
    """A multi-layer perceptron: dense layers with ReLU between them, logits out.

    Takes a batch of ``[features]`` vectors and returns ``[outputs]`` per item.
    """
    layers: list[nn.Module] = []
    width = features
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, outputs))
    return nn.Sequential(*layers)
{% endif -%}
