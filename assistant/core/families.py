"""How each fusion family turns messages and images into model inputs, and runs prefill and decode steps.

- prefix (LLaVA, LLaVA-NeXT, LLaVA-OneVision): each image placeholder is expanded to as many positions
  as the image has projected features; those positions' embeddings are the features.
- cross_attention (Mllama): one placeholder per image; the text layers cross-attend to vision states.
- text (any causal LM, e.g. SmolLM2): no images.

An adapter builds a `Prompt` (token ids, per-position keys for the KV cache, image inputs) and runs
`prefill(prompt, start, cache)` over positions start.. and `step(token, prompt, cache)` for one token.
The engine owns the loop, the caches and the stats; adapters own what differs between families.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict

import torch

from assistant.core.decoding import attention_backends, cache_argument
from assistant.core.types import GenerationStats, ImageInput, Prompt
from tools.errors import BadInputError, ModelLoadError

PREFIX_TYPES = ("llava", "llava_next", "llava_onevision")
CROSS_ATTENTION_TYPES = ("mllama",)
SUPPORTED = "LLaVA (llava), LLaVA-NeXT (llava_next), LLaVA-OneVision (llava_onevision), Mllama (mllama), or a text-only causal LM"


def family_of(config) -> str:
    """The fusion family of `config`: "prefix", "cross_attention" or "text"; else a ModelLoadError."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES,
    )

    mtype = getattr(config, "model_type", "")
    if mtype in PREFIX_TYPES:
        return "prefix"
    if mtype in CROSS_ATTENTION_TYPES:
        return "cross_attention"
    if mtype in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and mtype not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        return "text"
    raise ModelLoadError(f"unsupported model family {mtype!r}; supported: {SUPPORTED}")


def prepare_pil(image: ImageInput):
    """The pixels the model sees: crop (original-image pixels), then cap the longer side."""
    pil = image.ref.image
    if image.crop is not None:
        x0, y0, x1, y1 = (round(v) for v in image.crop)
        pil = pil.crop((max(0, x0), max(0, y0), min(pil.width, x1), min(pil.height, y1)))
    if image.max_side and max(pil.size) > image.max_side:
        scale = image.max_side / max(pil.size)
        pil = pil.resize((max(1, round(pil.width * scale)), max(1, round(pil.height * scale))))
    return pil


class Adapter:
    family = "text"

    def __init__(self, model, processor, embed_cache, cache_prefix: str):
        self.model = model
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.embed_cache = embed_cache
        self.cache_prefix = cache_prefix  # model id + revision + settings: the non-image part of the key
        self.device = next(model.parameters()).device
        self.cache_arg = cache_argument(model)  # "cache" or "past_key_values", by transformers version
        self.image_token_id: int | None = None
        # image key -> its size in the prompt (prefix: token count; cross-attention: tiles), so a turn
        # whose images are all in the reused KV prefix never touches pixels or the vision tower.
        self._sizes: OrderedDict[str, int] = OrderedDict()

    # --- prompt -------------------------------------------------------------------------------
    def render(self, messages: list[dict]) -> list[int]:
        if self.family == "text":  # text-only chat templates expect string contents
            messages = _text_only(messages)
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        bos = self.tokenizer.bos_token
        # Chat templates that already write BOS must not get a second one.
        add_special = not (bos and text.startswith(bos))
        return self.tokenizer(text, add_special_tokens=add_special)["input_ids"]

    def prepare(self, messages: list[dict], images: list[ImageInput], stats: GenerationStats) -> Prompt:
        if images:
            raise BadInputError("this model is text-only; it cannot take images")
        ids = self.render(messages)
        return Prompt(ids=ids, keys=list(ids))

    def image_token_count(self, image: ImageInput) -> int:
        return 0

    def materialize(self, prompt: Prompt, start: int, stats: GenerationStats) -> None:
        """Fetch the vision tensors that prefilling from `start` needs (none for text)."""

    def _size(self, image: ImageInput, stats: GenerationStats, compute, size_of) -> tuple[int, dict | None]:
        """(size, tensors or None): from the memo when known, else by running the vision stage."""
        key = image.key()
        if key in self._sizes:
            self._sizes.move_to_end(key)
            return self._sizes[key], None
        item = self._cached_vision(image, stats, compute)
        self._sizes[key] = size_of(item)
        if len(self._sizes) > 4096:
            self._sizes.popitem(last=False)
        return self._sizes[key], item

    # --- forward ------------------------------------------------------------------------------
    def new_cache(self, static_len: int = 0):
        """A DynamicCache, or a StaticCache of `static_len` positions (fixed shapes, for CUDA graphs)."""
        if static_len:
            from transformers import StaticCache

            return StaticCache(config=self.model.config, max_cache_len=static_len)
        from transformers import DynamicCache

        return DynamicCache(config=self.model.config)

    @torch.inference_mode()  # a static cache's tensors were made in inference mode
    def crop(self, cache, n: int) -> bool:
        """Keep the first n positions; False when this cache cannot be cropped (then recompute)."""
        try:
            for layer in cache.layers:
                if getattr(layer, "is_initialized", False) and layer.get_seq_length() > n:
                    layer.crop(n - layer.get_seq_length())
        except (RuntimeError, ValueError):
            return False
        return True

    def seq_len(self, cache) -> int:
        return int(cache.get_seq_length())

    def _forward(self, cache, **inputs) -> torch.Tensor:
        """Last position's logits; the KV of every input position lands in `cache`."""
        with attention_backends():
            out = self.model(**inputs, **{self.cache_arg: cache}, use_cache=True, logits_to_keep=1)
        return out.logits[:, -1]

    def prefill(self, prompt: Prompt, start: int, cache) -> torch.Tensor:
        return self._forward(cache, input_ids=torch.tensor([prompt.ids[start:]], device=self.device))

    def step(self, token: int, prompt: Prompt, cache) -> torch.Tensor:
        return self.step_ids(torch.tensor([[token]], device=self.device), cache)

    def step_ids(self, ids: torch.Tensor, cache) -> torch.Tensor:
        """One decode step from a [1, 1] tensor of the token (what a CUDA graph captures)."""
        return self._forward(cache, input_ids=ids)

    # --- vision -------------------------------------------------------------------------------
    def _cached_vision(self, image: ImageInput, stats: GenerationStats, compute) -> dict:
        """The vision stage's tensors for `image`: from the embedding cache, else computed and stored."""
        t0 = time.perf_counter()
        key = f"{self.cache_prefix}|{image.key()}"
        item = self.embed_cache.get(key) if self.embed_cache is not None else None
        if item is not None:
            stats.embed_cache_hits += 1
        else:
            stats.embed_cache_misses += 1
            with torch.inference_mode():
                item = compute(prepare_pil(image))
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)  # the tower's time is vision time, not prefill time
            if self.embed_cache is not None:
                self.embed_cache.put(key, item)
        stats.vision_s += time.perf_counter() - t0
        return item

    def _image_positions(self, ids: list[int], n_images: int) -> list[int]:
        pos = [i for i, t in enumerate(ids) if t == self.image_token_id]
        if len(pos) != n_images:
            raise BadInputError(
                f"the messages hold {len(pos)} image placeholders but {n_images} images were given"
            )
        return pos


def _text_only(messages: list[dict]) -> list[dict]:
    out = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            if any(p.get("type") == "image" for p in content):
                raise BadInputError("this model is text-only; it cannot take images")
            content = "".join(p.get("text", "") for p in content if p.get("type") == "text")
        out.append({**m, "content": content})
    return out


class PrefixAdapter(Adapter):
    family = "prefix"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.image_token_id = self.model.config.image_token_id
        self.embed = self.model.get_input_embeddings()
        vision = getattr(self.model.model, "vision_tower", None)
        self.vision_dtype = next(vision.parameters()).dtype if vision is not None else self.embed.weight.dtype

    def image_token_count(self, image: ImageInput) -> int:
        w, h = prepare_pil(image).size
        return int(self.processor._get_num_multimodal_tokens(image_sizes=[(h, w)]).num_image_tokens[0])

    def _features(self, pil) -> dict:
        inputs = self.processor.image_processor(images=[pil], return_tensors="pt")
        kwargs = {"pixel_values": inputs["pixel_values"].to(self.device, self.vision_dtype)}
        for name in ("image_sizes", "batch_num_images"):
            if name in inputs:
                kwargs[name] = inputs[name].to(self.device)
        out = self.model.model.get_image_features(**kwargs, return_dict=True)
        return {"features": out.pooler_output[0].to(self.embed.weight.dtype)}

    def prepare(self, messages, images, stats) -> Prompt:
        ids = self.render(messages)
        positions = self._image_positions(ids, len(images))
        prompt = Prompt(ids=[], keys=[], images=list(images))
        prev = 0
        for pos, image in zip(positions, images, strict=True):
            n, item = self._size(image, stats, self._features, lambda it: int(it["features"].shape[0]))
            if item is not None:
                prompt.ready[image.key()] = item
            prompt.ids += ids[prev:pos]
            prompt.keys += ids[prev:pos]
            prompt.spans.append((len(prompt.ids), n))
            prompt.ids += [self.image_token_id] * n
            prompt.keys += [f"img:{image.key()}"] * n
            prev = pos + 1
        prompt.ids += ids[prev:]
        prompt.keys += ids[prev:]
        prompt.image_tokens = sum(n for _, n in prompt.spans)
        return prompt

    def materialize(self, prompt: Prompt, start: int, stats: GenerationStats) -> None:
        feats = []
        for image, (first, n) in zip(prompt.images, prompt.spans, strict=True):
            if first + n <= start:
                continue  # all of this image's positions come from the KV cache
            item = prompt.ready.get(image.key()) or self._cached_vision(image, stats, self._features)
            feats.append(item["features"][max(0, start - first) :])
        prompt.features = torch.cat(feats) if feats else None

    def prefill(self, prompt: Prompt, start: int, cache) -> torch.Tensor:
        ids = torch.tensor([prompt.ids[start:]], device=self.device)
        is_image = ids == self.image_token_id
        embeds = self.embed(ids.clamp(max=self.embed.num_embeddings - 1))
        if prompt.features is not None:
            # `features` holds exactly the image positions from `start` on, in order.
            mask = is_image.unsqueeze(-1).expand_as(embeds)
            embeds = embeds.masked_scatter(mask, prompt.features.to(embeds.device, embeds.dtype))
        return self._forward(cache, inputs_embeds=embeds)


class CrossAttentionAdapter(Adapter):
    family = "cross_attention"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.image_token_id = self.model.config.image_token_id
        text = self.model.config.get_text_config(decoder=True)
        self.cross_layers = set(text.cross_attention_layers)
        vision = self.model.model.vision_model
        self.vision_dtype = next(vision.parameters()).dtype
        self.max_tiles = self.processor.image_processor.max_image_tiles
        self.patches_per_tile = vision.num_patches

    def image_token_count(self, image: ImageInput) -> int:
        from transformers.models.mllama.image_processing_mllama import get_optimal_tiled_canvas

        ip = self.processor.image_processor
        w, h = prepare_pil(image).size
        tile = ip.size["height"]
        canvas_h, canvas_w = get_optimal_tiled_canvas(h, w, self.max_tiles, tile)
        return (canvas_h // tile) * (canvas_w // tile) * self.patches_per_tile

    def _states(self, pil) -> dict:
        inputs = self.processor.image_processor(images=[[pil]], return_tensors="pt")
        vision = self.model.model.vision_model(
            pixel_values=inputs["pixel_values"].to(self.device, self.vision_dtype),
            aspect_ratio_ids=inputs["aspect_ratio_ids"].to(self.device),
            aspect_ratio_mask=inputs["aspect_ratio_mask"].to(self.device),
        ).last_hidden_state
        states = self.model.model.multi_modal_projector(vision)
        states = states.reshape(-1, vision.shape[-2], states.shape[-1])
        return {"states": states, "num_tiles": torch.tensor(inputs["num_tiles"][0], dtype=torch.long)}

    def prepare(self, messages, images, stats) -> Prompt:
        from transformers.models.mllama.processing_mllama import (
            convert_sparse_cross_attention_mask_to_dense,
            get_cross_attention_token_mask,
        )

        ids = self.render(messages)
        positions = self._image_positions(ids, len(images))
        keys: list = list(ids)
        for pos, image in zip(positions, images, strict=True):
            keys[pos] = f"img:{image.key()}"
        if not images:
            return Prompt(ids=ids, keys=keys)
        # Every position's keys/values depend on the whole image set (the cross-attention cache holds all
        # images' states), so a different set must never reuse anything: it is part of position 0's key.
        image_set = hashlib.sha256("|".join(im.key() for im in images).encode()).hexdigest()[:16]
        keys[0] = f"{ids[0]}|images={image_set}"
        prompt = Prompt(ids=ids, keys=keys, images=list(images))
        tiles = []
        for image in images:
            n, item = self._size(image, stats, self._states, lambda it: int(it["num_tiles"].item()))
            if item is not None:
                prompt.ready[image.key()] = item
            tiles.append(n)
        sparse = get_cross_attention_token_mask(ids, self.image_token_id)
        mask = convert_sparse_cross_attention_mask_to_dense(
            [sparse], num_tiles=[tiles], max_num_tiles=self.max_tiles, length=len(ids)
        )
        prompt.cross_mask = torch.as_tensor(mask, device=self.device)
        prompt.image_tokens = sum(tiles) * self.patches_per_tile
        return prompt

    def materialize(self, prompt: Prompt, start: int, stats: GenerationStats) -> None:
        if start > 0 or not prompt.images:
            return  # a reused prefix already holds every image's cross-attention keys and values
        items = [
            prompt.ready.get(im.key()) or self._cached_vision(im, stats, self._states) for im in prompt.images
        ]
        prompt.cross_states = torch.cat([it["states"] for it in items])

    @torch.inference_mode()
    def crop(self, cache, n: int) -> bool:
        # Cross-attention layers hold the image states, not positions: they stay as they are.
        try:
            for i, layer in enumerate(cache.layers):
                if i not in self.cross_layers and layer.is_initialized and layer.get_seq_length() > n:
                    layer.crop(n - layer.get_seq_length())
        except (RuntimeError, ValueError):
            return False
        return True

    def prefill(self, prompt: Prompt, start: int, cache) -> torch.Tensor:
        ids = torch.tensor([prompt.ids[start:]], device=self.device)
        kwargs = {}
        if prompt.cross_mask is not None:
            kwargs["cross_attention_mask"] = prompt.cross_mask[:, start:]
            if start == 0:  # later starts reuse the cross-attention states already in the cache
                kwargs["cross_attention_states"] = prompt.cross_states
        return self._forward(cache, input_ids=ids, **kwargs)

    def step(self, token: int, prompt: Prompt, cache) -> torch.Tensor:
        ids = torch.tensor([[token]], device=self.device)
        kwargs = {}
        if prompt.cross_mask is not None:
            kwargs["cross_attention_mask"] = prompt.cross_mask[
                :, -1:
            ]  # generated tokens see what the last one saw
        return self._forward(cache, input_ids=ids, **kwargs)


ADAPTERS = {"text": Adapter, "prefix": PrefixAdapter, "cross_attention": CrossAttentionAdapter}
