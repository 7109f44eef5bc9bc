"""Numeric items: every value checked against the model's shape and dtype."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.handler_base import InputError
from {{ cookiecutter.package_name }}.tensors import (
    schema,
    to_tensor,
    zeros,
)


def test_integer_model_inputs_must_be_whole() -> None:
    tensor = to_tensor([1, 2], (2,), "int64")
    assert tensor.dtype.is_floating_point is False
    with pytest.raises(InputError, match="every value must be whole"):
        to_tensor([1, 2.5], (2,), "int64")


@pytest.mark.parametrize(
    ("dtype", "value", "accepted"),
    [
        ("int32", 2**31 - 1, True),
        ("int32", 2**31, False),
        ("int32", -(2**31), True),
        ("int32", -(2**31) - 1, False),
        # 2**63 - 1 is not a float64; the nearest one is 2**63, which int64 cannot hold.
        ("int64", 2**62, True),
        ("int64", 2**63, False),
        ("int64", -(2**63), True),
        ("float16", 65504.0, True),
        ("float16", 70000.0, False),
    ],
)
def test_values_at_the_edge_of_the_dtype(dtype: str, value: float, accepted: bool) -> None:
    if accepted:
        assert to_tensor([value], (1,), dtype).item() == value
    else:
        with pytest.raises(InputError, match=f"out of range for {dtype}"):
            to_tensor([value], (1,), dtype)


def test_nested_shapes() -> None:
    assert to_tensor([[1, 2, 3], [4, 5, 6]], (2, 3), "float32").shape == (2, 3)
    with pytest.raises(InputError, match=r"must have shape \[2, 3\], got \[3, 2\]"):
        to_tensor([[1, 2], [3, 4], [5, 6]], (2, 3), "float32")
    with pytest.raises(InputError, match="all of the same length"):
        to_tensor([[1, 2, 3], [4, 5]], (2, 3), "float32")


@pytest.mark.parametrize(
    "values",
    [
        [1.0, True],
        [[1.0, 2.0], [3.0, False]],
        [[1.0, 2.0], [3.0, "4"]],
        [[1.0, None], [3.0, 4.0]],
        [[1.0, 2.0], [{"x": 1}, 4.0]],
        [[[1.0], [2.0]], [[3.0], ["x"]]],
        [[1.0, 2.0], 3.0],
    ],
)
def test_a_leaf_that_is_not_a_number_is_refused_at_any_depth(values: list[object]) -> None:
    # Checked before NumPy, which would take true for 1.0 and "4" for 4.0 silently.
    shape = (2, 2) if isinstance(values[0], list) and len(values[0]) == 2 else (2,)
    with pytest.raises(InputError):
        to_tensor(values, shape, "float32")


def test_whole_and_fractional_numbers_mix_freely() -> None:
    assert to_tensor([[1, 2.5], [3, 4]], (2, 2), "float32").tolist() == [[1.0, 2.5], [3.0, 4.0]]


def test_schema_states_the_exact_shape_and_kind() -> None:
    assert schema((2, 3), "int64") == {
        "type": "array",
        "minItems": 2,
        "maxItems": 2,
        "items": {"type": "array", "minItems": 3, "maxItems": 3, "items": {"type": "integer"}},
    }


def test_an_item_needs_a_declared_shape() -> None:
    assert zeros((2, 1)) == [[0.0], [0.0]]
    with pytest.raises(ValueError, match="set MODEL_INPUT_SHAPE"):
        zeros(())
