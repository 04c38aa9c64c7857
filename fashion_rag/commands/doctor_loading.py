"""Section 3 of `doctor` (fashion_rag/commands/doctor.py): every present part loaded through the loaders the
product uses. Strict UNet and adapter loads name bad keys; the UNet's tensor count is checked (686 for the
published checkpoint, its own config's for a bundle). Each part is one step, in the order the report lists them.

Not a command: cli.COMMAND_MODULES names the commands; this module only serves `doctor`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fashion_rag.commands.doctor_report import Report, attempt
from fashion_rag.weights import ADAPTER_CHECKPOINT, UNET_CHECKPOINT

# docs/recipe.md, sources rule 2: the published UNet state dict has exactly these many tensors and parameters.
PUBLISHED_UNET_TENSORS = 686
PUBLISHED_UNET_PARAMETERS = 865_976_964


@dataclass
class Loading:
    """What every step needs: the report to add to, the sources, where each part was found, device and dtype."""

    report: Report
    sources: Any  # fashion_rag.weights.ModelSources
    locations: dict
    device: Any  # torch.device
    dtype: Any  # torch.dtype

    @property
    def real(self) -> bool:
        return self.sources.kind == "real"

    def fix_for(self, name: str) -> str:
        if self.sources.bundle_dir:
            return f"rebuild the bundle: `python -m fashion_rag weights make-tiny {self.sources.bundle_dir}`"
        return f"delete weights/{name}/ and run `python -m fashion_rag weights download {name}`"

    def hashed(self, file_name: str) -> str | None:  # hashed above: the checkpoint loader need not hash it again
        return self.report.parts.get("fashion-rag", {}).get("files", {}).get(file_name, {}).get("sha256")

    def skip(self, name: str) -> bool:
        if not self.locations[name].found:
            self.report.add("load", name, None, "skipped: the part is missing")
            return True
        return False

    def attempt(self, name: str, load) -> Any:
        """`attempt` in the "load" section, with the fix of the part `name` belongs to ("fashion-rag/<file>")."""
        return attempt(self.report, "load", name, self.fix_for(name.split("/")[0]), load)


def check_loading(report: Report, sources, locations: dict, device, dtype) -> dict:
    """Load each present part; returns the loaded objects by name (absent when a part is missing or failed)."""
    step = Loading(report, sources, locations, device, dtype)
    loaded: dict = {}
    if not step.skip("sd2-inpainting"):
        load_sd2(step, loaded)
    if not step.skip("garment-encoder"):
        load_garment_encoder(step, loaded)
    if not step.skip("fashion-rag") and "sd2_dir" in loaded:
        load_unet(step, loaded)
        if "garment_encoder" in loaded:
            load_adapter(step, loaded)
    elif locations["fashion-rag"].found:
        report.add("load", "fashion-rag", None, "skipped: needs sd2-inpainting's UNet config, which did not load")
    if not step.skip("retrieval-encoder"):
        load_retrieval_encoder(step, loaded)
    if not step.skip("clothes-parser"):
        load_clothes_parser(step, loaded)
    return loaded


def load_sd2(step: Loading, loaded: dict) -> None:
    """Tokenizer, text encoder, VAE and scheduler of SD2 inpainting; checks their published settings."""
    from fashion_rag.generation import loading

    sd2 = step.attempt("sd2-inpainting", lambda: step.sources.require("sd2-inpainting"))
    if sd2 is None:
        return

    def load_parts() -> dict:
        return {
            "tokenizer": loading.load_tokenizer(sd2),
            "text_encoder": loading.load_text_encoder(sd2, step.device, step.dtype),
            "vae": loading.load_vae(sd2, step.device, step.dtype),
            "scheduler": loading.load_scheduler(sd2),
            "sd2_dir": sd2,
        }

    parts = step.attempt("sd2-inpainting", load_parts)
    if parts is None:
        return
    width = parts["text_encoder"].config.hidden_size
    scaling = parts["vae"].config.scaling_factor
    prediction = parts["scheduler"].config.prediction_type
    ok = scaling == 0.18215 and prediction == "epsilon" and (width == 1024 or not step.real)
    step.report.add(
        "load",
        "sd2-inpainting",
        ok,
        f"tokenizer {len(parts['tokenizer'])} ids, text encoder width {width}, VAE scaling {scaling}, "
        f"DDIM {prediction} prediction",
        "the published parts have width 1024, VAE scaling 0.18215 and epsilon prediction: "
        + step.fix_for("sd2-inpainting"),
    )
    if ok:
        loaded.update(parts)


def load_garment_encoder(step: Loading, loaded: dict) -> None:
    """The CLIP vision tower that encodes garments (hidden 1280 when published)."""
    from fashion_rag.generation import loading

    encoder = step.attempt(
        "garment-encoder",
        lambda: loading.load_garment_encoder(step.sources.require("garment-encoder"), step.device, step.dtype),
    )
    if encoder is None:
        return
    hidden = encoder[0].config.hidden_size
    ok = hidden == 1280 or not step.real
    step.report.add(
        "load", "garment-encoder", ok, f"CLIP vision tower, hidden {hidden}", step.fix_for("garment-encoder")
    )
    if ok:
        loaded["garment_encoder"], loaded["image_processor"] = encoder


def load_unet(step: Loading, loaded: dict) -> None:
    """The fashion-rag UNet, strictly loaded on SD2's config; its tensor and parameter counts checked."""
    from fashion_rag.generation import loading

    name = f"fashion-rag/{UNET_CHECKPOINT}"
    unet = step.attempt(
        name,
        lambda: loading.load_fashion_unet(
            loaded["sd2_dir"],
            step.sources.require("fashion-rag"),
            step.device,
            step.dtype,
            step.hashed(UNET_CHECKPOINT),
        ),
    )
    if unet is None:
        return
    tensors = len(unet.state_dict())
    parameters = sum(p.numel() for p in unet.parameters())
    if step.real:
        ok = tensors == PUBLISHED_UNET_TENSORS and parameters == PUBLISHED_UNET_PARAMETERS
        want = f"published: {PUBLISHED_UNET_TENSORS} tensors, {PUBLISHED_UNET_PARAMETERS:,} parameters"
    else:
        ok, want = True, "the bundle's own UNet config"
    step.report.add(
        "load",
        name,
        ok,
        f"strict load: {tensors} tensors, {parameters:,} parameters, conv_in {unet.config.in_channels} "
        f"channels ({want})",
        step.fix_for("fashion-rag"),
    )
    if ok:
        loaded["unet"] = unet


def load_adapter(step: Loading, loaded: dict) -> None:
    """The garment adapter, strictly loaded for the garment encoder's width."""
    from fashion_rag.generation import loading

    name = f"fashion-rag/{ADAPTER_CHECKPOINT}"
    adapter = step.attempt(
        name,
        lambda: loading.load_adapter(
            step.sources.require("fashion-rag"),
            loaded["garment_encoder"].config,
            step.device,
            step.dtype,
            step.hashed(ADAPTER_CHECKPOINT),
        ),
    )
    if adapter is None:
        return
    step.report.add(
        "load",
        name,
        True,
        f"strict load: {len(adapter.state_dict())} tensors, {adapter.token_dim}-wide garment tokens",
    )
    loaded["adapter"] = adapter


def load_retrieval_encoder(step: Loading, loaded: dict) -> None:
    from fashion_rag.catalog.encoder import RetrievalEncoder

    retrieval = step.attempt(
        "retrieval-encoder", lambda: RetrievalEncoder.from_sources(step.sources, device=step.device)
    )
    if retrieval is not None:
        step.report.add("load", "retrieval-encoder", True, f"open_clip, {retrieval.dim}-d embeddings")
        loaded["retrieval"] = retrieval


def load_clothes_parser(step: Loading, loaded: dict) -> None:
    from fashion_rag.person.parser import ClothesParser

    parser = step.attempt(
        "clothes-parser", lambda: ClothesParser.from_pretrained(step.sources.require("clothes-parser"), step.device)
    )
    if parser is not None:
        step.report.add("load", "clothes-parser", True, f"SegFormer, {parser.model.config.num_labels} ATR labels")
        loaded["parser"] = parser
