"""The network (embeddings for categoricals + an MLP) and its pickle-free save format.

A saved model is a folder: `config.json` (architecture), `weights.safetensors` (tensors only)
and `featurizer.json`. Loading rebuilds the network from the config and fills in the weights,
so nothing executable is ever deserialised. The int8 variant is dynamic quantization of the
Linear layers (torch.ao): it is derived from the fp32 weights at load time, deterministically.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from tasks.core.io import atomic_path, write_text
from tasks.core.layout import CONFIG_FILE, FEATURIZER_FILE, WEIGHTS_FILE
from tasks.model.featurize import Featurizer


@dataclass(frozen=True)
class NetConfig:
    cardinalities: list[int]
    embedding_dims: list[int]
    numeric_width: int
    hidden: list[int]
    dropout: float
    quantized: bool = False

    @classmethod
    def for_featurizer(
        cls, featurizer: Featurizer, hidden: list[int], max_embedding_dim: int, dropout: float
    ) -> NetConfig:
        cards = featurizer.cardinalities
        # The fast.ai rule of thumb, capped: enough room for rare carriers/airports, no more.
        dims = [max(2, min(max_embedding_dim, round(1.6 * c**0.56))) for c in cards]
        return cls(cards, dims, featurizer.numeric_width, list(hidden), dropout)


class TabularNet(nn.Module):
    """Embeddings + numeric inputs → MLP → one logit."""

    def __init__(self, config: NetConfig):
        super().__init__()
        self.config = config
        self.embeddings = nn.ModuleList(
            nn.Embedding(card, dim)
            for card, dim in zip(config.cardinalities, config.embedding_dims, strict=True)
        )
        width = sum(config.embedding_dims) + config.numeric_width
        layers: list[nn.Module] = []
        for size in config.hidden:
            layers += [nn.Linear(width, size), nn.ReLU(inplace=True), nn.Dropout(config.dropout)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, categorical: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        parts = [emb(categorical[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.mlp(torch.cat([*parts, numeric], dim=1)).squeeze(1)


def parameter_count(model: nn.Module) -> int:
    """Weights of the network, also those packed inside dynamically quantized Linear layers."""
    from torch.ao.nn.quantized.dynamic import Linear as QLinear

    count = sum(p.numel() for p in model.parameters())
    for module in model.modules():
        if isinstance(module, QLinear):
            bias = module.bias()
            count += module.weight().numel() + (bias.numel() if bias is not None else 0)
    return count


def quantize_int8(model: TabularNet) -> nn.Module:
    """Dynamic int8 quantization of the Linear layers (embeddings stay fp32).

    torch.ao's quantize_dynamic is deprecated in favour of torchao, but torchao's CPU int8 path
    adds a dependency and gains nothing here; fbgemm's dynamic int8 kernels ship with torch.
    """
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        quantized = quantize_dynamic(model.eval(), {nn.Linear}, dtype=torch.qint8)
    quantized.config = NetConfig(**{**asdict(model.config), "quantized": True})
    return quantized


def _int8_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Tensors of a dynamically quantized model: int8 weights with their scale, fp32 the rest."""
    from torch.ao.nn.quantized.dynamic import Linear as QLinear

    state: dict[str, torch.Tensor] = {}
    for name, module in model.named_modules():
        if isinstance(module, QLinear):
            weight, bias = module.weight(), module.bias()
            state[f"{name}.weight_int8"] = weight.int_repr()
            state[f"{name}.weight_scale"] = torch.tensor([weight.q_scale()], dtype=torch.float64)
            state[f"{name}.weight_zero_point"] = torch.tensor([weight.q_zero_point()])
            if bias is not None:
                state[f"{name}.bias"] = bias.detach()
        elif isinstance(module, nn.Embedding):
            state[f"{name}.weight"] = module.weight.detach()
    return state


def _load_int8_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    from torch.ao.nn.quantized.dynamic import Linear as QLinear

    for name, module in model.named_modules():
        if isinstance(module, QLinear):
            weight = torch._make_per_tensor_quantized_tensor(
                state[f"{name}.weight_int8"],
                float(state[f"{name}.weight_scale"].item()),
                int(state[f"{name}.weight_zero_point"].item()),
            )
            module.set_weight_bias(weight, state.get(f"{name}.bias"))
        elif isinstance(module, nn.Embedding):
            module.weight.data.copy_(state[f"{name}.weight"])


def save_model(model: nn.Module, featurizer: Featurizer, folder: Path) -> Path:
    """Write config, weights (int8 for a quantized model) and featurizer; each atomically."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config: NetConfig = model.config
    if config.quantized:
        state = _int8_state(model)
    else:
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
    write_text(folder / CONFIG_FILE, json.dumps(asdict(config), indent=1))
    write_text(folder / FEATURIZER_FILE, featurizer.to_json())
    return folder


def load_model(folder: Path) -> tuple[nn.Module, Featurizer]:
    """Rebuild the network from its JSON config and load the safetensors weights (no pickle)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    config = NetConfig(**json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8")))
    state = load_file(str(folder / WEIGHTS_FILE))
    model = TabularNet(NetConfig(**{**asdict(config), "quantized": False}))
    if config.quantized:
        model = quantize_int8(model)
        _load_int8_state(model, state)
    else:
        model.load_state_dict(state)
    model.eval()
    return model, Featurizer.load(folder / FEATURIZER_FILE)


def artifact_bytes(folder: Path) -> int:
    """Bytes a deployment ships: every file of the saved model folder."""
    return sum(p.stat().st_size for p in Path(folder).iterdir() if p.is_file())
