"""PyTorch multilayer perceptron for tabular rows, saved as one safetensors file.

Inside the network: numbers are standardised with the training rows' mean and deviation, a
missing number becomes 0 plus a missing-indicator input; each categorical column has an
embedding whose slot 0 is kept for a missing or unseen category (codes 0..k-1 take 1..k). Then
hidden layers (ReLU, dropout) and one output per class (softmax) or one value (squared error on
the standardised target). Trained with AdamW on shuffled mini-batches.

Runs on CUDA when ``torch.cuda.is_available()`` (``device="auto"``), else on the CPU. On the CPU
the same data, hyperparameters and seed give bit-identical weights: the seed drives the weight
initialisation, dropout and the shuffling (a generator of its own), and the caller's global
random state is left untouched.

Saved as a safetensors file whose metadata holds the architecture as JSON (``"mlscale"`` key);
the normalisation statistics are tensors in it. No pickle: ``torch.save`` is never used.
torch and safetensors come with the ``torch`` extra, imported when first used.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import struct
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from mlscale._lazy import require
from mlscale.errors import IntegrityError, UserError
from mlscale.models.base import BaseModel, IterationCallback
from mlscale.models.params import Param

FORMAT = "mlscale.torch_mlp/1"
# Hyperparameters that shape the network: a continued model keeps those of the earlier one.
_ARCHITECTURE = ("hidden_size", "num_layers", "embedding_dim")
_PREDICT_BATCH = 65_536


def _torch() -> Any:
    return require("torch", extra="torch")


class TorchMLPModel(BaseModel):
    """An MLP with categorical embeddings; the trained ``torch.nn.Module`` is ``net_``.

    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [np.nan, 0.0]] * 8)
    >>> m = TorchMLPModel(task="binary", categorical=[1], params={"epochs": 60, "device": "cpu"})
    >>> m.fit(X, np.array([0, 0, 1, 1] * 8), num_classes=2, seed=0).predict(X[:4]).argmax(1)
    array([0, 0, 1, 1])
    """

    flavor = "torch_mlp"
    warm_start = True
    iterations_param = "epochs"
    params_spec: ClassVar[dict[str, Param]] = {
        "epochs": Param("int", 30, low=1, high=100_000, search=(5, 200), log=True),
        "hidden_size": Param("int", 128, low=1, high=65_536, search=(16, 512), log=True),
        "num_layers": Param("int", 2, low=0, high=32, search=(1, 4), help="hidden layers"),
        "dropout": Param("float", 0.1, low=0.0, high=0.9, search=(0.0, 0.5)),
        "learning_rate": Param(
            "float", 1e-3, low=0.0, high=1.0, low_open=True, search=(1e-4, 1e-2), log=True
        ),
        "weight_decay": Param("float", 1e-4, low=0.0, search=(1e-6, 1e-1), log=True),
        "batch_size": Param("int", 256, low=1, high=10_000_000, search=(32, 2048), log=True),
        "embedding_dim": Param(
            "int", 0, low=0, high=4_096, help="0: min(16, (categories + 1) // 2 + 1)"
        ),
        "device": Param("choice", "auto", choices=("auto", "cpu", "cuda")),
        "num_threads": Param("int", 0, low=0, help="CPU threads; 0: torch's default"),
    }

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        num_classes: int,
        seed: int,
        valid: tuple[np.ndarray, np.ndarray] | None = None,
        on_iteration: IterationCallback | None = None,
        init_from: BaseModel | None = None,
    ) -> TorchMLPModel:
        self._check_init_from(init_from)
        torch = _torch()
        params = self.effective_params()
        device = _device(torch, params["device"])
        n_outputs = 1 if self.task == "regression" else num_classes
        if isinstance(init_from, TorchMLPModel):
            arch = self._continued_arch(init_from, X, n_outputs)
        else:
            arch = self._new_arch(X, n_outputs, params)
        self.arch_ = arch | {"dropout": params["dropout"], "device": params["device"]}
        cuda = [device.index or 0] if device.type == "cuda" else []
        # A forked random state: seeding must not change the caller's global generator.
        with torch.random.fork_rng(devices=cuda), _threads(torch, params["num_threads"]):
            torch.manual_seed(seed)
            if isinstance(init_from, TorchMLPModel):
                net = copy.deepcopy(init_from.net_)  # leave the earlier model as it was
                for module in net.modules():
                    if isinstance(module, torch.nn.Dropout):
                        module.p = params["dropout"]
            else:
                net = _network(torch)(self.arch_)
                net.set_statistics(X, y if self.task == "regression" else None)
            self.net_ = net.to(device)
            epochs = self._train(torch, X, y, params, seed, valid, on_iteration)
        earlier = init_from.arch_["epochs_trained"] if isinstance(init_from, TorchMLPModel) else 0
        self.arch_["epochs_trained"] = earlier + epochs
        self.net_.eval()
        return self

    def _new_arch(self, X: np.ndarray, n_outputs: int, params: dict[str, Any]) -> dict[str, Any]:
        cards = []
        for j in self.categorical:
            codes = X[:, j][~np.isnan(X[:, j])]
            cards.append(max(int(codes.max()) + 1, 0) if len(codes) else 0)
        dims = [params["embedding_dim"] or min(16, (card + 1) // 2 + 1) for card in cards]
        return {
            "format": FORMAT,
            "task": self.task,
            "n_features": X.shape[1],
            "numeric": [i for i in range(X.shape[1]) if i not in self.categorical],
            "categorical": list(self.categorical),
            "cardinalities": cards,
            "embedding_dim": params["embedding_dim"],
            "embedding_dims": dims,
            "hidden_size": params["hidden_size"],
            "num_layers": params["num_layers"],
            "n_outputs": n_outputs,
        }

    def _continued_arch(self, init: TorchMLPModel, X: np.ndarray, n_outputs: int) -> dict[str, Any]:
        arch = dict(init.arch_)
        if X.shape[1] != arch["n_features"] or n_outputs != arch["n_outputs"]:
            raise UserError(
                f"cannot continue a torch_mlp model trained on {arch['n_features']} features "
                f"and {arch['n_outputs']} outputs with data of {X.shape[1]} features and "
                f"{n_outputs} outputs"
            )
        if arch["categorical"] != list(self.categorical):
            raise UserError(
                f"cannot continue a torch_mlp model whose categorical columns are "
                f"{arch['categorical']} with categorical columns {self.categorical}"
            )
        for name in _ARCHITECTURE:
            given = self.params.get(name)
            if given is not None and given != arch[name]:
                raise UserError(
                    f"hyperparameter {name!r} of model 'torch_mlp' cannot change when "
                    f"continuing training: the earlier model has {arch[name]}, got {given}"
                )
        return arch

    def _train(
        self,
        torch: Any,
        X: np.ndarray,
        y: np.ndarray,
        params: dict[str, Any],
        seed: int,
        valid: tuple[np.ndarray, np.ndarray] | None,
        on_iteration: IterationCallback | None,
    ) -> int:
        """Train ``self.net_`` in place; returns the number of epochs run."""
        net, device = self.net_, next(self.net_.parameters()).device
        inputs = torch.as_tensor(np.asarray(X, dtype=np.float64), device=device)
        target = self._target(torch, y, device)
        optimizer = torch.optim.AdamW(
            net.parameters(), lr=params["learning_rate"], weight_decay=params["weight_decay"]
        )
        shuffle = torch.Generator().manual_seed(seed)  # CPU: the same order on any device
        batch = params["batch_size"]
        self.curves_ = {"valid_loss": []} if valid is not None else {}
        for epoch in range(1, params["epochs"] + 1):
            net.train()
            order = torch.randperm(len(inputs), generator=shuffle).to(device)
            for start in range(0, len(order), batch):
                rows = order[start : start + batch]
                optimizer.zero_grad(set_to_none=True)
                self._loss(torch, net(inputs[rows]), target[rows]).backward()
                optimizer.step()
            if valid is not None:
                loss = self._valid_loss(torch, *valid)
                self.curves_["valid_loss"].append(loss)
                if on_iteration is not None and on_iteration(epoch, {"valid_loss": loss}):
                    return epoch
        return params["epochs"]

    def _target(self, torch: Any, y: np.ndarray, device: Any) -> Any:
        if self.task != "regression":
            return torch.as_tensor(np.asarray(y, dtype=np.int64), device=device)
        mean, std = self.net_.target.tolist()
        return torch.as_tensor((np.asarray(y, np.float64) - mean) / std, device=device).float()

    def _loss(self, torch: Any, out: Any, target: Any) -> Any:
        if self.task == "regression":
            return torch.nn.functional.mse_loss(out[:, 0], target)
        return torch.nn.functional.cross_entropy(out, target)

    def _valid_loss(self, torch: Any, X: np.ndarray, y: np.ndarray) -> float:
        """Log loss for classes, mean squared error in the target's units for values."""
        out = self.predict(X)
        if self.task == "regression":
            return float(np.mean((out - np.asarray(y, np.float64)) ** 2))
        picked = out[np.arange(len(y)), np.asarray(y, np.int64)]
        return float(-np.mean(np.log(np.clip(picked, 1e-15, None))))

    def predict(self, X: np.ndarray) -> np.ndarray:
        torch = _torch()
        net = self.net_
        net.eval()
        device = next(net.parameters()).device
        parts = []
        with torch.inference_mode():
            for start in range(0, max(len(X), 1), _PREDICT_BATCH):
                rows = np.asarray(X[start : start + _PREDICT_BATCH], dtype=np.float64)
                out = net(torch.as_tensor(rows, device=device)).double()
                if self.task == "regression":
                    mean, std = net.target.tolist()
                    parts.append((out[:, 0] * std + mean).cpu().numpy())
                else:
                    parts.append(torch.softmax(out, dim=1).cpu().numpy())
        return np.concatenate(parts)

    def save(self) -> bytes:
        st = require("safetensors.torch", extra="torch")
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.net_.state_dict().items()}
        return st.save(tensors, metadata={"mlscale": json.dumps(self.arch_, sort_keys=True)})

    @classmethod
    def load(cls, data: bytes, *, task: str, categorical: list[int]) -> TorchMLPModel:
        torch = _torch()
        st = require("safetensors.torch", extra="torch")
        arch = read_header(data)
        if arch["task"] != task or arch["categorical"] != list(categorical):
            raise IntegrityError(
                f"torch_mlp model for a {arch['task']} task with categorical columns "
                f"{arch['categorical']}, loaded as {task} with {list(categorical)}"
            )
        model = cls(task=task, categorical=categorical, params={"dropout": arch["dropout"]})
        model.arch_ = arch
        net = _network(torch)(arch)
        try:
            net.load_state_dict(st.load(data), strict=True)
        except (RuntimeError, require("safetensors", extra="torch").SafetensorError) as exc:
            raise IntegrityError(
                f"saved torch_mlp model whose tensors do not match its architecture: {exc}"
            ) from None
        model.net_ = net.to(_device(torch, arch["device"])).eval()
        return model


def read_header(data: bytes) -> dict[str, Any]:
    """The architecture stored in a saved model's safetensors metadata.

    A safetensors file starts with the length of its JSON header (8 bytes, little-endian).
    """
    try:
        (size,) = struct.unpack("<Q", data[:8])
        arch = json.loads(json.loads(data[8 : 8 + size])["__metadata__"]["mlscale"])
    except (struct.error, ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"not a saved torch_mlp model: {exc}") from None
    if not isinstance(arch, dict) or arch.get("format") != FORMAT:
        raise IntegrityError(f"not a saved torch_mlp model (expected format {FORMAT!r})")
    return arch


@contextlib.contextmanager
def _threads(torch: Any, n: int) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` (0: unchanged) for a block, then restored.

    Small networks run slower on more threads, and parallel tuning trials would oversubscribe
    the cores; torch's setting is process-wide, hence the restore.
    """
    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _device(torch: Any, wanted: str) -> Any:
    if wanted == "cuda" and not torch.cuda.is_available():
        raise UserError(
            "hyperparameter 'device' of model 'torch_mlp' is 'cuda' but no CUDA device is "
            "available; use 'auto' or 'cpu'"
        )
    if wanted == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


@functools.cache
def _network(torch: Any) -> type:
    """The network class (defined once torch is imported, as torch is optional)."""
    nn = torch.nn

    class TabularMLP(nn.Module):
        def __init__(self, arch: dict[str, Any]) -> None:
            super().__init__()
            numeric, cards = arch["numeric"], arch["cardinalities"]
            self.categorical = list(arch["categorical"])
            self.register_buffer("numeric", torch.tensor(numeric, dtype=torch.long), False)
            self.register_buffer("cards", torch.tensor(cards, dtype=torch.float64), False)
            # Statistics in float64: a timestamp-sized column loses its digits in float32.
            self.register_buffer("mean", torch.zeros(len(numeric), dtype=torch.float64))
            self.register_buffer("std", torch.ones(len(numeric), dtype=torch.float64))
            self.register_buffer("target", torch.tensor([0.0, 1.0], dtype=torch.float64))
            self.embeddings = nn.ModuleList(
                nn.Embedding(card + 1, dim)
                for card, dim in zip(cards, arch["embedding_dims"], strict=True)
            )
            width = 2 * len(numeric) + sum(arch["embedding_dims"])
            layers: list[Any] = []
            for _ in range(arch["num_layers"]):
                layers += [
                    nn.Linear(width, arch["hidden_size"]),
                    nn.ReLU(),
                    nn.Dropout(arch["dropout"]),
                ]
                width = arch["hidden_size"]
            layers.append(nn.Linear(width, arch["n_outputs"]))
            self.body = nn.Sequential(*layers)

        def set_statistics(self, X: np.ndarray, y: np.ndarray | None) -> None:
            num = X[:, self.numeric.tolist()]
            seen = ~np.isnan(num)
            count = np.maximum(seen.sum(axis=0), 1)
            mean = np.where(seen, num, 0.0).sum(axis=0) / count
            var = np.where(seen, (num - mean) ** 2, 0.0).sum(axis=0) / count
            std = np.sqrt(var)
            self.mean.copy_(torch.as_tensor(mean))
            self.std.copy_(torch.as_tensor(np.where(std > 0, std, 1.0)))
            if y is not None:
                y_std = float(np.std(y))
                self.target.copy_(torch.tensor([float(np.mean(y)), y_std if y_std > 0 else 1.0]))

        def forward(self, x: Any) -> Any:
            num = x[:, self.numeric]
            missing = torch.isnan(num)
            scaled = torch.where(missing, 0.0, (num - self.mean) / self.std)
            parts = [scaled.float(), missing.float()]
            for k, (column, embedding) in enumerate(
                zip(self.categorical, self.embeddings, strict=True)
            ):
                code = x[:, column]
                known = (code >= 0) & (code < self.cards[k])  # False for NaN: slot 0
                parts.append(embedding(torch.where(known, code.floor() + 1, 0.0).long()))
            return self.body(torch.cat(parts, dim=1))

    return TabularMLP
