"""Garment-token prompts (docs/recipe.md, garment tokens rules 4-8).

With n garments the prompt is `a photo of a model wearing {what} made of` followed by " $ " 16 n
times. After the token embedding, the 16 n positions that start at the first `$` (id 259) are
overwritten with the garment tokens; position embeddings, the causal text transformer and the final
layer norm then run as usual. Current transformers no longer takes `inputs_embeds` in the CLIP text
model, so the overwrite is a forward hook on the token-embedding layer.
"""

from __future__ import annotations

import threading

import torch

from fashion_rag.errors import InputError, check_category
from fashion_rag.generation.adapter import TOKENS_PER_GARMENT
from fashion_rag.generation.limits import MAX_GARMENTS

GARMENT_PLACEHOLDER_ID = 259  # "$</w>" in the CLIP vocabulary
WHAT_BY_CATEGORY = {
    "dresses": "a dress",
    "upper_body": "an upper body garment",
    "lower_body": "a lower body garment",
}

# The hook is attached to a shared text encoder for the duration of one call.
_HOOK_LOCK = threading.Lock()


def garment_prompt(category: str, num_garments: int) -> str:
    """The published prompt for `num_garments` (1-3) garments of `category`."""
    check_category(category)
    if not 1 <= num_garments <= MAX_GARMENTS:
        raise InputError(f"{num_garments} garments given: Fashion-RAG takes 1 to {MAX_GARMENTS}")
    what = WHAT_BY_CATEGORY[category]
    return f"a photo of a model wearing {what} made of" + " $ " * (TOKENS_PER_GARMENT * num_garments)


def text_only_prompt(category: str, description: str = "") -> str:
    """The prompt with no garments at all (docs/recipe.md, garment tokens rule 8)."""
    check_category(category)
    return f"a photo of a model wearing {WHAT_BY_CATEGORY[category]}. {description}".rstrip()


def tokenize(tokenizer, prompt: str) -> torch.Tensor:
    """(1, 77) ids, padded with the pad id (0 for SD2) and truncated to the tokenizer's maximum."""
    return tokenizer(
        prompt, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids


def placeholder_span(input_ids: torch.Tensor, num_tokens: int) -> slice:
    """The `num_tokens` consecutive positions starting at the first `$`; checks they are all `$`."""
    hits = (input_ids[0] == GARMENT_PLACEHOLDER_ID).nonzero()
    if len(hits) == 0:
        raise ValueError("the prompt has no `$` placeholder for garment tokens")
    start = int(hits[0])
    span = slice(start, start + num_tokens)
    if int((input_ids[0, span] == GARMENT_PLACEHOLDER_ID).sum()) != num_tokens:
        raise ValueError(f"the prompt does not hold {num_tokens} consecutive `$` placeholders")
    return span


@torch.no_grad()
def encode_text(tokenizer, text_encoder, prompt: str, garment_tokens: torch.Tensor | None = None) -> torch.Tensor:
    """(1, 77, width) `last_hidden_state` of `prompt`, with `garment_tokens` (16 n, width) injected."""
    device = text_encoder.device
    input_ids = tokenize(tokenizer, prompt).to(device)
    if garment_tokens is None:
        return text_encoder(input_ids).last_hidden_state
    span = placeholder_span(input_ids, garment_tokens.shape[0])

    def overwrite_placeholders(_module, _inputs, embeddings: torch.Tensor) -> torch.Tensor:
        embeddings = embeddings.clone()  # (1, 77, width)
        embeddings[:, span] = garment_tokens.to(device=embeddings.device, dtype=embeddings.dtype)
        return embeddings

    with _HOOK_LOCK:
        handle = text_encoder.get_input_embeddings().register_forward_hook(overwrite_placeholders)
        try:
            return text_encoder(input_ids).last_hidden_state
        finally:
            handle.remove()


def encode_garment_prompt(
    tokenizer, text_encoder, category: str, garment_tokens: torch.Tensor | None, description: str = ""
) -> torch.Tensor:
    """Conditional embedding (1, 77, width).

    `garment_tokens` is (n, 16, width) in rank order, or None for the text-only prompt.
    """
    if garment_tokens is None or garment_tokens.shape[0] == 0:
        return encode_text(tokenizer, text_encoder, text_only_prompt(category, description))
    prompt = garment_prompt(category, garment_tokens.shape[0])
    return encode_text(tokenizer, text_encoder, prompt, garment_tokens.reshape(-1, garment_tokens.shape[-1]))


def encode_unconditional(tokenizer, text_encoder) -> torch.Tensor:
    """(1, 77, width): the empty prompt with no garment tokens (docs/recipe.md, garment tokens rule 7)."""
    return encode_text(tokenizer, text_encoder, "")
