import keras
import numpy as np
import pytest

from mnist_models import mlp


@pytest.fixture(scope="module")
def model() -> keras.Model:
    return mlp.build_mlp("float32")


def test_layers_and_parameter_counts_match_the_reference(model):
    rows = mlp.layer_table(model)
    assert [(r["type"], r["output_shape"], r["params"]) for r in rows] == [
        ("Flatten", "(None, 784)", 0),
        ("Dense", "(None, 128)", 100_480),
        ("Dense", "(None, 128)", 16_512),
        ("Dense", "(None, 10)", 1_290),
    ]
    assert [layer.activation.__name__ for layer in model.layers[1:]] == ["relu", "relu", "softmax"]
    assert mlp.parameter_count(model) == 118_282


def test_parameter_memory_is_462_04_kb(model):
    assert mlp.parameter_bytes(model) == 473_128
    assert mlp.format_kib(mlp.parameter_bytes(model)) == "462.04 KB"


def test_compiled_like_the_reference(model):
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)
    assert model.loss == "sparse_categorical_crossentropy"


def test_keras_summary_names_every_layer_and_the_total(model):
    """Keras' own summary shows the 118,282 parameters and each layer's (fails if a layer changes)."""
    lines: list[str] = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line), line_length=80)
    text = "\n".join(lines)
    assert "Total params: 118,282 (462.04 KB)" in text
    for count in ("100,480", "16,512", "1,290"):
        assert count in text


@pytest.mark.parametrize(
    ("policy", "low"), [("mixed_float16", "float16"), ("mixed_bfloat16", "bfloat16")]
)
def test_mixed_policies_compute_low_but_keep_float32_variables(policy, low):
    model = mlp.build_mlp(policy)
    hidden = model.layers[1:3]
    assert [layer.compute_dtype for layer in hidden] == [low, low]
    assert model.layers[-1].compute_dtype == "float32"  # softmax in float32
    assert {str(w.dtype) for w in model.weights} == {"float32"}
    assert mlp.parameter_bytes(model) == 473_128  # does not halve
    x = keras.ops.zeros((2, 28, 28))
    hidden_out = keras.Model(model.inputs, model.layers[2].output)(x)
    assert keras.backend.standardize_dtype(hidden_out.dtype) == low  # really computed low
    assert keras.backend.standardize_dtype(model(x).dtype) == "float32"


def test_mixed_float16_uses_keras_loss_scaling():
    assert isinstance(mlp.build_mlp("mixed_float16").optimizer, keras.optimizers.LossScaleOptimizer)
    assert not isinstance(
        mlp.build_mlp("mixed_bfloat16").optimizer, keras.optimizers.LossScaleOptimizer
    )


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="unknown dtype policy 'float64'"):
        mlp.build_mlp("float64")


def test_scaling_is_x_over_255_for_every_pixel_value():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    scaled = mlp.scale_images(pixels)
    assert scaled.dtype == np.float32
    # Bit for bit what the reference's float64 x / 255.0 gives once Keras casts it to float32.
    assert np.array_equal(scaled, (pixels / 255.0).astype(np.float32))
    assert np.array_equal(mlp.scale_images(pixels.astype(np.int64)), scaled)
