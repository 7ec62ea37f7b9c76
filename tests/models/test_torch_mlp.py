"""PyTorch MLP: the slot for unseen categories, the saved file, continued training, devices."""

from __future__ import annotations

import json
import struct
import sys

import numpy as np
import pytest

from mlscale.errors import IntegrityError, MissingDependencyError, UserError
from mlscale.models.torch_mlp import TorchMLPModel, read_header

torch = pytest.importorskip("torch")  # the ``torch`` extra
safetensors_torch = pytest.importorskip("safetensors.torch")

PARAMS = {"epochs": 5, "hidden_size": 16, "batch_size": 32, "device": "cpu", "num_threads": 1}


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=200), rng.integers(0, 3, 200), np.full(200, np.nan)])
    return X, (X[:, 0] + X[:, 1] > 1).astype(np.int64)


def fitted(**params: object) -> TorchMLPModel:
    X, y = data()
    model = TorchMLPModel(task="binary", categorical=[1], params=PARAMS | params)
    return model.fit(X, y, num_classes=2, seed=0)


def test_unseen_and_missing_categories_share_one_slot() -> None:
    model = fitted()
    rows = np.array([[0.5, code, 0.0] for code in (np.nan, 3.0, -1.0, 99.0, 1.0)])
    out = model.predict(rows)
    assert np.isfinite(out).all()  # an all-missing numeric column (index 2) is fine too
    for other in out[1:4]:
        np.testing.assert_array_equal(other, out[0])
    assert not np.array_equal(out[4], out[0])  # a known category has an embedding of its own


def test_fit_leaves_global_torch_state_alone() -> None:
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    fitted()
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.get_num_threads() == threads


def test_saved_as_plain_safetensors_with_the_architecture() -> None:
    model = fitted()
    saved = model.save()
    tensors = safetensors_torch.load(saved)
    assert {"mean", "std", "target", "embeddings.0.weight"} <= set(tensors)
    assert tensors["embeddings.0.weight"].shape == (4, 3)  # 3 categories + the unseen slot
    arch = read_header(saved)
    assert arch["cardinalities"] == [3] and arch["hidden_size"] == 16
    assert arch["epochs_trained"] == 5


def test_a_file_that_is_not_ours_is_refused() -> None:
    other = safetensors_torch.save({"w": torch.zeros(2)}, metadata={"mlscale": '{"a": 1}'})
    for data_bytes in (b"\x00" * 3, other):
        with pytest.raises(IntegrityError, match="not a saved torch_mlp model"):
            TorchMLPModel.load(data_bytes, task="binary", categorical=[1])
    with pytest.raises(IntegrityError, match="loaded as binary with \\[0\\]"):
        TorchMLPModel.load(fitted().save(), task="binary", categorical=[0])


def test_forged_header_cannot_change_the_weights_shapes() -> None:
    saved = fitted().save()
    (size,) = struct.unpack("<Q", saved[:8])
    header = json.loads(saved[8 : 8 + size])
    arch = json.loads(header["__metadata__"]["mlscale"])
    arch["hidden_size"] = 8  # a header that does not match its tensors
    header["__metadata__"]["mlscale"] = json.dumps(arch)
    body = json.dumps(header).encode()
    forged = struct.pack("<Q", len(body)) + body + saved[8 + size :]
    with pytest.raises(IntegrityError, match=r"(?s)do not match its architecture.*size mismatch"):
        TorchMLPModel.load(forged, task="binary", categorical=[1])
    with pytest.raises(IntegrityError, match="do not match its architecture"):
        TorchMLPModel.load(saved[:-10], task="binary", categorical=[1])  # truncated


def test_continuing_keeps_the_architecture() -> None:
    X, y = data()
    first = fitted()
    with pytest.raises(UserError, match="'hidden_size' of model 'torch_mlp' cannot change"):
        TorchMLPModel(task="binary", categorical=[1], params=PARAMS | {"hidden_size": 64}).fit(
            X, y, num_classes=2, seed=0, init_from=first
        )
    # Unchanged or unspecified architecture continues; new training settings apply.
    more = TorchMLPModel(task="binary", categorical=[1], params=PARAMS | {"dropout": 0.3})
    more.fit(X, y, num_classes=2, seed=1, init_from=first)
    assert more.arch_["epochs_trained"] == 10 and more.arch_["dropout"] == 0.3


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_device_is_a_user_error() -> None:
    with pytest.raises(UserError, match="'device' of model 'torch_mlp' is 'cuda' but no CUDA"):
        fitted(device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_trains_and_predicts_on_cuda() -> None:
    X, _ = data()
    model = fitted(device="auto")
    assert next(model.net_.parameters()).device.type == "cuda"
    again = TorchMLPModel.load(model.save(), task="binary", categorical=[1])
    np.testing.assert_array_equal(again.predict(X), model.predict(X))


def test_missing_install_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # what an absent package looks like
    X, y = data()
    with pytest.raises(MissingDependencyError, match=r'pip install "mlscale\[torch\]"'):
        TorchMLPModel(task="binary", categorical=[1]).fit(X, y, num_classes=2, seed=0)
