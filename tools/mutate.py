"""`make mutate`: plant single-rule deviations from docs/recipe.md and check that a test catches each one.

Every mutation below changes one rule of the recipe (docs/recipe.md: sampler, UNet input, garment
tokens, mask) or one product rule (n distinct images, uploaded garments used, pose passed,
description only where garment tokens rule 8 puts it), by replacing exact source text. The repository is copied once
to a scratch folder (the working tree is never touched); each mutation is applied there, the tests named
for it run with `-x`, and the file is restored. A mutation is caught when pytest reports a failing test
(exit code 1); anything else (passing tests, a collection error, a mutation whose text is not found)
counts as not caught. The unmutated tests must pass first.

The tiny bundle is built once from the unmutated copy and handed to every run (mutate_plugin.py), and the
heavy libraries are imported once: each run is a forked child (POSIX only) that imports the mutated
project afresh, so it pays only for its own tests.

    python tools/mutate.py            # all mutations; prints `N/M mutations caught`, exit 1 below M/M
    python tools/mutate.py -k pose    # only mutations whose name contains "pose" (-k repeats: any of them)
    python tools/mutate.py --list
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

R = "tests/test_recipe_reference.py::"
TWO = R + "test_two_uploaded_garments_match_the_reference_at_every_stage"
TEXT_ONLY = R + "test_text_only_prompt_carries_the_description"
SEVERAL = R + "test_several_images_each_get_their_own_noise"
DPM = R + "test_dpm_solver_option_runs_dpm_solver"
THREE = R + "test_three_garments_in_rank_order_and_guidance_below_one"
FIFTY = R + "test_fifty_step_schedule_is_981_to_1"
DEFAULTS = R + "test_defaults_are_the_published_recipe"
EPS = R + "test_adapter_layernorm_eps_comes_from_the_vision_config"
MASKS = "tests/test_person_masks.py"
POSE_MAP = "tests/test_person_pose.py::test_heatmap_equals_the_formula_of_the_spec_everywhere"
POSE_MAPPING = "tests/test_person_pose.py::test_every_coco_point_comes_from_the_blazepose_landmark_of_the_same_name"
FRAMING = "tests/test_person_photo.py"
PASTE = "tests/test_generation.py::test_feathered_alpha_and_paste_back_against_brute_force"

PIPELINE = "fashion_rag/generation/pipeline.py"
LOADING = "fashion_rag/generation/loading.py"
GARMENTS = "fashion_rag/generation/garments.py"
ADAPTER = "fashion_rag/generation/adapter.py"
PROMPT = "fashion_rag/generation/prompt.py"
EDITOR = "fashion_rag/editor.py"
RESULTS = "fashion_rag/results.py"
POSE = "fashion_rag/person/pose.py"
MASK = "fashion_rag/person/masks.py"
DDIM_LINE = 'return DDIMScheduler.from_config(config, timestep_spacing="leading")'


@dataclass(frozen=True)
class Mutation:
    name: str  # section/rule
    rule: str  # the docs/recipe.md rule it breaks, in words
    edits: tuple[tuple[str, str, str], ...]  # (file, exact old text, new text); each old text occurs once
    tests: tuple[str, ...]  # what should catch it, cheapest first


def m(name: str, rule: str, file: str, old: str, new: str, *tests: str) -> Mutation:
    return Mutation(name, rule, ((file, old, new),), tests)


MUTATIONS: tuple[Mutation, ...] = (
    # ---- Sampler
    m("sampler/leading-spacing", "DDIM timestep_spacing 'leading' (981, ..., 1)", LOADING, DDIM_LINE,
      DDIM_LINE.replace('"leading"', '"trailing"'), FIFTY, TWO),
    m("sampler/steps-offset", "steps_offset=1", LOADING, DDIM_LINE,
      DDIM_LINE.replace(")", ", steps_offset=0)"), FIFTY, TWO),
    m("sampler/eta-zero", "DDIM eta 0", PIPELINE, "self.scheduler.step(noise, timestep, latents, generator=generator,",
      "self.scheduler.step(noise, timestep, latents, eta=1.0, generator=generator,", TWO),
    m("sampler/clip-sample", "clip_sample=False", LOADING, DDIM_LINE, DDIM_LINE.replace(")", ", clip_sample=True)"), TWO),
    m("sampler/alpha-to-one", "set_alpha_to_one=False", LOADING, DDIM_LINE,
      DDIM_LINE.replace(")", ", set_alpha_to_one=True)"), TWO),
    m("sampler/betas", "scaled_linear betas 0.00085 to 0.012", LOADING, DDIM_LINE,
      DDIM_LINE.replace(")", ', beta_schedule="linear")'), TWO),
    m("sampler/guidance-formula", "eps = eps_u + g (eps_c - eps_u)", PIPELINE,
      "noise = noise_unconditional + guidance * (noise_conditional - noise_unconditional)",
      "noise = noise_conditional + guidance * (noise_conditional - noise_unconditional)", TWO),
    m("sampler/guidance-below-one", "the formula holds for g < 1 too (not diffusers' g <= 1 shortcut)", PIPELINE,
      "use_guidance = guidance != 1.0", "use_guidance = guidance > 1.0", THREE),
    m("sampler/cfg-batch-order", "batch is [unconditional; conditional]", PIPELINE,
      "condition = torch.cat([unconditional_condition, condition])",
      "condition = torch.cat([condition, unconditional_condition])", TWO),
    m("sampler/default-steps", "50 steps by default", "fashion_rag/config.py", "DEFAULT_STEPS = 50", "DEFAULT_STEPS = 30",
      DEFAULTS),
    m("sampler/default-guidance", "guidance 7.5 by default", "fashion_rag/config.py", "DEFAULT_GUIDANCE = 7.5",
      "DEFAULT_GUIDANCE = 5.0", DEFAULTS),
    m("sampler/dpm-option-ignored", "the DPM-Solver++ option runs DPM-Solver++", EDITOR,
      "pipeline.use_scheduler(request.scheduler)", 'pipeline.use_scheduler("ddim")', DPM),
    # ---- The 27 UNet channels
    m("channels/mask-nearest", "mask resized with nearest neighbour", PIPELINE,
      "mask_latent = F.interpolate(mask_full, size=(latent_h, latent_w))",
      'mask_latent = F.interpolate(mask_full, size=(latent_h, latent_w), mode="bilinear")', TWO),
    m("channels/masked-latents-scaled", "masked-image latents times 0.18215", PIPELINE,
      "masked_latents = posterior.sample(generator) * self.vae.config.scaling_factor",
      "masked_latents = posterior.sample(generator)", TWO),
    m("channels/posterior-sample", "a sample of the VAE posterior, drawn with the run's generator", PIPELINE,
      "masked_latents = posterior.sample(generator) * self.vae.config.scaling_factor",
      "masked_latents = posterior.mode() * self.vae.config.scaling_factor", TWO),
    m("channels/masked-image", "masked image = image where mask < 0.5, else 0", PIPELINE,
      "masked_frame = frame * (mask_full < 0.5)", "masked_frame = frame", TWO),
    m("channels/pose-bilinear", "pose map resized bilinearly", PIPELINE,
      'pose_latent = F.interpolate(pose_full, size=(latent_h, latent_w), mode="bilinear", align_corners=False)',
      'pose_latent = F.interpolate(pose_full, size=(latent_h, latent_w), mode="nearest")', TWO),
    m("channels/pose-align-corners", "align_corners False", PIPELINE, 'mode="bilinear", align_corners=False)',
      'mode="bilinear", align_corners=True)', TWO),
    m("channels/unconditional-zero-pose", "the unconditional half gets an all-zero pose map", PIPELINE,
      "unconditional_condition[:, 5:] = 0", "unconditional_condition[:, 5:] *= 1", TWO),
    m("channels/order", "channels: latents, mask, masked latents, pose", PIPELINE,
      "condition = [mask_latent.repeat(batch, 1, 1, 1), masked_latents.repeat(batch, 1, 1, 1)]",
      "condition = [masked_latents.repeat(batch, 1, 1, 1), mask_latent.repeat(batch, 1, 1, 1)]", TWO),
    m("channels/person-scale", "person image scaled to [-1, 1]", PIPELINE, "/ 127.5 - 1.0", "/ 255.0", TWO),
    m("channels/mask-threshold", "mask binarised at 0.5 (not > 0)", PIPELINE, "binary = (values >= 0.5)",
      "binary = (values > 0)", THREE),
    m("channels/user-mask-threshold", "the user's mask binarised at 0.5 (not > 0)", "fashion_rag/person/prepare.py",
      "    mask = framed >= 0.5\n", "    mask = framed > 0\n", TWO),
    m("channels/person-resize-aliased", "person resized with Pillow's BICUBIC (antialiased)",
      "fashion_rag/person/framing.py",
      "return image.resize(size, Image.Resampling.BICUBIC, box=(x0, y0, x1, y1), reducing_gap=REDUCING_GAP)",
      "return image.crop((x0, y0, x1, y1)).resize(size, Image.Resampling.NEAREST)", FRAMING),
    m("channels/pose-sigma", "exp(-d^2 / 9^2), not 2 sigma^2", POSE, "/ sigma**2), np.exp(-((xs - kx) ** 2) / sigma**2))",
      "/ (2 * sigma**2)), np.exp(-((xs - kx) ** 2) / (2 * sigma**2)))", POSE_MAP, TWO),
    m("channels/pose-peak", "each pose channel divided by its maximum", POSE, "maps[k] = channel / peak",
      "maps[k] = channel", TWO),
    m("channels/neck-midpoint", "the neck is the midpoint of the shoulders", POSE,
      "keypoints[NECK] = (pixels[BLAZEPOSE_RIGHT_SHOULDER] + pixels[BLAZEPOSE_LEFT_SHOULDER]) / 2",
      "keypoints[NECK] = pixels[BLAZEPOSE_RIGHT_SHOULDER]", POSE_MAPPING),
    m("channels/coco18-right-left", "COCO-18 2 is the right shoulder (BlazePose 12)", POSE,
      "(0, None, 12, 14, 16, 11, 13, 15,", "(0, None, 11, 14, 16, 12, 13, 15,", POSE_MAPPING),
    m("channels/coco18-eyes", "COCO-18 14/15 are the right/left eye (BlazePose 5/2)", POSE, "27, 5, 2, 8, 7)",
      "27, 2, 5, 8, 7)", POSE_MAPPING),
    # ---- Garment tokens
    m("garments/stretch-size", "garments stretched to 384x512 (W x H)", GARMENTS,
      "GARMENT_SIZE = (FRAME_WIDTH, FRAME_HEIGHT)",
      "GARMENT_SIZE = (FRAME_HEIGHT, FRAME_WIDTH)", TWO),
    m("garments/bicubic", "garment stretch with Pillow's default BICUBIC", GARMENTS,
      "resize(GARMENT_SIZE, Image.Resampling.BICUBIC)", "resize(GARMENT_SIZE, Image.Resampling.BILINEAR)", TWO),
    m("garments/on-white", "a transparent garment is composited on white", GARMENTS, "stretched = to_rgb(image)",
      'stretched = image.convert("RGB")', TWO),
    m("garments/rescale-once", "the 1/255 rescale happens exactly once", GARMENTS,
      "arrays.append(np.array(stretched, dtype=np.uint8))",
      "arrays.append(np.array(stretched, dtype=np.float32) / 255.0)", TWO),
    m("garments/before-post-layernorm", "vision last_hidden_state, before the post layernorm", GARMENTS,
      "hidden = image_encoder(pixel_values=pixels).last_hidden_state",
      "hidden = image_encoder.vision_model.post_layernorm(image_encoder(pixel_values=pixels).last_hidden_state)", TWO),
    m("garments/adapter-token-0", "adapter takes token 0 (no pooling)", ADAPTER,
      "hidden = self.post_layernorm(hidden[:, 0, :])", "hidden = self.post_layernorm(hidden.mean(dim=1))", TWO),
    m("garments/adapter-encoder-layer", "adapter starts with one CLIPEncoderLayer", ADAPTER,
      "hidden = self.encoder_layers[0](vision_hidden_states, attention_mask=None)",
      "hidden = vision_hidden_states", TWO),
    m("garments/adapter-eps", "adapter LayerNorm eps from the vision config", ADAPTER,
      "nn.LayerNorm(width, eps=vision_config.layer_norm_eps)", "nn.LayerNorm(width)", EPS),
    m("garments/16-tokens-layout", "output reshaped to (16, 1024)", ADAPTER,
      "return tokens.view(tokens.shape[0], TOKENS_PER_GARMENT, self.token_dim)",
      "return tokens.view(tokens.shape[0], self.token_dim, TOKENS_PER_GARMENT).transpose(1, 2)", TWO),
    m("garments/rank-order", "token blocks concatenated in rank order", PROMPT,
      "garment_tokens.reshape(-1, garment_tokens.shape[-1]))", "garment_tokens.flip(0).reshape(-1, garment_tokens.shape[-1]))",
      TWO),
    m("garments/prompt-what", "{what} = 'an upper body garment'", PROMPT, '"upper_body": "an upper body garment"',
      '"upper_body": "an upper-body garment"', TWO),
    m("garments/prompt-made-of", "prompt '... wearing {what} made of $ ...'", PROMPT,
      'f"a photo of a model wearing {what} made of"', 'f"a photo of a model wearing {what}"', TWO),
    m("garments/16n-placeholders", "' $ ' repeated 16 n times", PROMPT, '" $ " * (TOKENS_PER_GARMENT * num_garments)',
      '" $ " * (TOKENS_PER_GARMENT * num_garments + 1)', TWO),
    m("garments/inject-token-embedding", "tokens overwrite the token embedding, before position embeddings", PROMPT,
      "handle = text_encoder.get_input_embeddings().register_forward_hook(overwrite_placeholders)",
      "handle = text_encoder.embeddings.position_embedding.register_forward_hook(overwrite_placeholders)", TWO),
    m("garments/unconditional-empty", "the unconditional embedding is the empty prompt", PROMPT,
      'return encode_text(tokenizer, text_encoder, "")', 'return encode_text(tokenizer, text_encoder, "a photo")', TWO),
    Mutation(
        "garments/no-description-in-garment-prompt",
        "the description is not in the garment-token prompt",
        (
            (PROMPT, "prompt = garment_prompt(category, garment_tokens.shape[0])",
             'prompt = garment_prompt(category, garment_tokens.shape[0]) + " " + description'),
            (EDITOR, 'description=request.description if tokens is None else "",', "description=request.description,"),
        ),
        (TWO,),
    ),  # fmt: skip
    m("garments/text-only-description", "text-only prompt '... wearing {what}. {description}'", PROMPT,
      'return f"a photo of a model wearing {WHAT_BY_CATEGORY[category]}. {description}".rstrip()',
      'return f"a photo of a model wearing {WHAT_BY_CATEGORY[category]}."', TEXT_ONLY),
    m("product/description-reaches-text-only", "the editor hands the description to the text-only prompt", EDITOR,
      'description=request.description if tokens is None else "",', 'description="",', TEXT_ONLY),
    # ---- Product rules
    m("product/distinct-images", "n requested images are n distinct images", RESULTS, "for frame in frames:",
      "for frame in [frames[0]] * len(frames):", SEVERAL),
    m("product/own-noise", "each image gets its own initial noise", PIPELINE,
      "latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)",
      "latents = randn_tensor((1,) + shape[1:], generator=generator, device=device, dtype=dtype).repeat(batch, 1, 1, 1)",
      SEVERAL),
    m("product/num-images-passed", "the editor asks for num_images", EDITOR, "num_images=request.num_images,",
      "num_images=1,", SEVERAL),
    m("product/uploads-used", "uploaded garments are used", EDITOR, "for image in garment_images:",
      "for image in garment_images[:1]:", TWO),
    m("product/pose-passed", "the editor passes the pose map", EDITOR, "pose_map=person.pose_map,", "pose_map=None,",
      TWO),
    # ---- Inpainting mask (Dress Code recipe)
    m("mask/head-labels", "head = {hat, hair, sunglasses, face}", MASK, "HEAD_LABELS = (HAT, HAIR, SUNGLASSES, FACE)",
      "HEAD_LABELS = (HAT, HAIR, FACE)", MASKS),
    m("mask/fixed-labels", "fixed = hair, shoes, hat, sunglasses, scarf, bag", MASK,
      "(HAIR, LEFT_SHOE, RIGHT_SHOE, HAT, SUNGLASSES, SCARF, BAG)", "(HAIR, LEFT_SHOE, RIGHT_SHOE, HAT, SUNGLASSES, SCARF)",
      MASKS),
    m("mask/dress-labels", "dresses garment region {7, 12, 13}", MASK, '"dresses": (DRESS, LEFT_LEG, RIGHT_LEG),',
      '"dresses": (DRESS,),', MASKS),
    m("mask/upper-fixes-lower", "upper_body: skirt and pants become fixed", MASK, '"upper_body": (SKIRT, PANTS),',
      '"upper_body": (SKIRT,),', MASKS),
    m("mask/lower-fixes-arms", "lower_body: upper clothes and both arms become fixed", MASK,
      '"lower_body": (UPPER_CLOTHES, LEFT_ARM, RIGHT_ARM),', '"lower_body": (UPPER_CLOTHES,),', MASKS),
    m("mask/arm-width", "arms polyline 45 px wide", MASK, "ARM_WIDTH = 45", "ARM_WIDTH = 40", MASKS),
    m("mask/round-joints", "arms polyline with round joints", MASK, 'width=width, joint="curve")', "width=width)", MASKS),
    m("mask/keep-wrist-without-elbow", "drop only a missing wrist or elbow", MASK,
      "return [shoulder] + [joint for joint in (elbow, wrist) if present(keypoints, joint)]",
      "return [shoulder] + ([elbow] + ([wrist] if present(keypoints, wrist) else []) if present(keypoints, elbow) else [])",
      MASKS),
    m("mask/hands-fixed", "arm pixels outside the polyline become fixed", MASK,
      "fixed |= np.isin(labels, ARM_LABELS) & ~arms", "fixed |= np.zeros_like(arms)", MASKS),
    m("mask/neck-margin", "head pixels more than 20 px above the shoulder line stay fixed", MASK, "NECK_MARGIN = 20",
      "NECK_MARGIN = 10", MASKS),
    m("mask/dilation-kernel", "dilate with a 5x5 kernel", MASK, "np.ones((5, 5), dtype=np.uint8)",
      "np.ones((3, 3), dtype=np.uint8)", MASKS),
    m("mask/dilation-iterations", "dilate 5 iterations", MASK, "DILATION_ITERATIONS = 5", "DILATION_ITERATIONS = 4",
      MASKS),
    m("mask/minus-fixed", "mask = dilated region minus fixed pixels", MASK, "precise = dilate(garment) & ~fixed",
      "precise = dilate(garment)", MASKS),
    m("mask/box-not-fixed", "box variant: pixels of the box that are not fixed", MASK, "return box & ~fixed",
      "return box", MASKS),
    # ---- Framing and paste-back
    m("framing/inverse", "unframe maps frame pixel centres back onto the photo's", "fashion_rag/person/framing.py",
      "return (points + 0.5) / self.scale + offset - 0.5", "return points / self.scale + offset", FRAMING),
    m("paste/feather", "alpha falls linearly to 0 over feather_px", "fashion_rag/generation/compose.py",
      "1.0 - distance / float(feather_px)", "1.0 - distance / float(2 * feather_px)", PASTE),
    m("paste/blend", "edit inside, original outside", "fashion_rag/generation/compose.py",
      "blended = alpha * edited + (1.0 - alpha) * original.astype(np.float32)",
      "blended = (1.0 - alpha) * edited + alpha * original.astype(np.float32)", PASTE),
)  # fmt: skip


def scratch_copy(destination: Path) -> None:
    """The working tree's files (tracked and untracked, not ignored) copied to `destination`."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


PYTEST_ARGS = ["-x", "-q", "-p", "no:cacheprovider", "-p", "mutate_plugin"]
# Imported once here, before any fork: each run then costs its tests, not ~20 s of imports. None of them
# imports the project, so every run imports the (mutated) project afresh.
HEAVY_IMPORTS = (
    "torch",
    "numpy",
    "PIL.Image",
    "cv2",
    "diffusers",
    "transformers",
    "mediapipe",
    "skimage",
    "safetensors.torch",
    "open_clip",
    "pytest",
)


def preimport() -> None:
    import importlib

    for name in HEAVY_IMPORTS:
        importlib.import_module(name)
    from diffusers import AutoencoderKL, DDIMScheduler, DPMSolverMultistepScheduler, UNet2DConditionModel  # noqa: F401
    from transformers import CLIPModel, CLIPTextModel, CLIPTokenizer, CLIPVisionModelWithProjection  # noqa: F401


def run_tests(root: Path, tests: tuple[str, ...], timeout: int) -> tuple[int, str]:
    """pytest on `tests` in a forked child (cwd `root`); (exit code, pytest's last line). -1: timed out."""
    import pytest

    with tempfile.TemporaryFile("w+") as log:
        pid = os.fork()
        if pid == 0:  # the child: run pytest and leave without running the parent's cleanup
            code = 3
            try:
                os.dup2(log.fileno(), 1)
                os.dup2(log.fileno(), 2)
                os.chdir(root)
                sys.path.insert(0, str(root))
                code = pytest.main([*PYTEST_ARGS, "--rootdir", str(root), *tests])
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(int(code))
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                code = -1
                break
            time.sleep(0.2)
        log.seek(0)
        lines = [line for line in log.read().splitlines() if line.strip()]
    return code, ("timed out" if code == -1 else lines[-1] if lines else "no output")


def apply(root: Path, mutation: Mutation) -> dict[Path, str] | str:
    """Apply every edit; the original texts, or the reason it could not be applied."""
    originals: dict[Path, str] = {}
    for file, old, new in mutation.edits:
        path = root / file
        text = originals.get(path, path.read_text())
        originals.setdefault(path, text)
        current = path.read_text()
        if current.count(old) != 1:
            restore(originals)
            return f"text to replace found {current.count(old)} times in {file}"
        path.write_text(current.replace(old, new))
        try:
            compile(path.read_text(), str(path), "exec")
        except SyntaxError as error:
            restore(originals)
            return f"mutated {file} does not compile: {error}"
    return originals


def restore(originals: dict[Path, str]) -> None:
    for path, text in originals.items():
        path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", action="append", default=[], help="only mutations whose name contains this (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per test run")
    args = parser.parse_args(argv)
    chosen = [mutation for mutation in MUTATIONS if not args.k or any(part in mutation.name for part in args.k)]
    if args.list:
        for mutation in chosen:
            print(f"{mutation.name:45} {mutation.rule}")
        return 0

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fashion-rag-mutate-") as scratch:
        root = Path(scratch) / "repo"
        scratch_copy(root)
        (root / ".venv").unlink(missing_ok=True)
        bundle = str(Path(scratch) / "tiny-bundle")
        print(f"scratch copy in {root}; building the tiny bundle once …", flush=True)
        subprocess.run(
            [sys.executable, "-m", "fashion_rag", "weights", "make-tiny", bundle],
            cwd=root,
            check=True,
            capture_output=True,
            env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
        )
        os.environ["FASHION_RAG_MUTATE_BUNDLE"] = bundle  # read by mutate_plugin in each run
        sys.dont_write_bytecode = True  # a mutated module must never be read back from a stale .pyc
        preimport()
        every_test = tuple(dict.fromkeys(test for mutation in chosen for test in mutation.tests))
        code, summary = run_tests(root, every_test, args.timeout * 2)
        print(f"unmutated: {summary}", flush=True)
        if code != 0:
            print("the unmutated tests must pass first", file=sys.stderr)
            return 2
        caught = 0
        for index, mutation in enumerate(chosen, 1):
            clock = time.perf_counter()
            originals = apply(root, mutation)
            if isinstance(originals, str):
                verdict, summary = "NOT APPLIED", originals
            else:
                try:
                    code, summary = run_tests(root, mutation.tests, args.timeout)
                finally:
                    restore(originals)
                verdict = "caught" if code == 1 else "MISSED"
                caught += code == 1
            print(
                f"[{index:2}/{len(chosen)}] {verdict:11} {mutation.name:45} {time.perf_counter() - clock:5.1f} s  "
                f"{summary}",
                flush=True,
            )
    print(f"{caught}/{len(chosen)} mutations caught ({time.perf_counter() - started:.0f} s)")
    return 0 if caught == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
