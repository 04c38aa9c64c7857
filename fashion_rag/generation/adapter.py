"""The inversion adapter: CLIP image features of one garment -> 16 pseudo-word tokens of the text encoder.

Layout (docs/recipe.md, garment tokens rule 3), with the state-dict keys of the published
`inversion_adapter_120000.pth`:

    encoder_layers.0.*   one CLIPEncoderLayer built with the vision config     (N, 257, 1280)
    [token 0]                                                                  (N, 1280)
    post_layernorm.*     LayerNorm(1280, eps = the vision config's layer_norm_eps)
    layers.0.*           Linear 1280 -> 5120, GELU, Dropout(0.5)
    layers.3.*           Linear 5120 -> 5120, GELU, Dropout(0.5)
    layers.6.*           Linear 5120 -> 16 * 1024                               (N, 16384)

The widths are read from the state dict, so the same class serves the tiny bundle.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import CLIPVisionConfig
from transformers.models.clip.modeling_clip import CLIPEncoderLayer

TOKENS_PER_GARMENT = 16


class InversionAdapter(nn.Module):
    def __init__(self, vision_config: CLIPVisionConfig, hidden_dim: int, token_dim: int) -> None:
        super().__init__()
        width = vision_config.hidden_size
        self.token_dim = token_dim
        self.encoder_layers = nn.ModuleList([CLIPEncoderLayer(vision_config)])
        self.post_layernorm = nn.LayerNorm(width, eps=vision_config.layer_norm_eps)
        self.layers = nn.Sequential(
            nn.Linear(width, hidden_dim),
            nn.GELU(),
            nn.Dropout(0.5),
            nn.Linear(hidden_dim, hidden_dim),
            nn.GELU(),
            nn.Dropout(0.5),
            nn.Linear(hidden_dim, TOKENS_PER_GARMENT * token_dim),
        )

    @property
    def device(self) -> torch.device:  # diffusers pipelines ask every component for these
        return self.post_layernorm.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.post_layernorm.weight.dtype

    @staticmethod
    def dims_from_state_dict(state_dict: dict[str, torch.Tensor]) -> tuple[int, int]:
        """(hidden_dim, token_dim) of a published-layout state dict."""
        hidden_dim = state_dict["layers.0.weight"].shape[0]
        token_dim = state_dict["layers.6.weight"].shape[0] // TOKENS_PER_GARMENT
        return hidden_dim, token_dim

    def forward(self, vision_hidden_states: torch.Tensor) -> torch.Tensor:
        """(N, 1 + patches, width) vision `last_hidden_state` -> (N, 16, token_dim) garment tokens."""
        hidden = self.encoder_layers[0](vision_hidden_states, attention_mask=None)
        hidden = self.post_layernorm(hidden[:, 0, :])
        tokens = self.layers(hidden)
        return tokens.view(tokens.shape[0], TOKENS_PER_GARMENT, self.token_dim)
