"""Random LLaVAs built offline: a tiny one saved like a real checkpoint, and LLaVA-1.5-7B's shapes in memory.

They let the llava backend's real loading and generation paths run with nothing downloaded: the tests, the CPU
mode of benchmarks/gpu_check.py and benchmarks/caption.py (`--model tiny|random-7b`). Imported only by them.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from designclip.pipeline.caption.prompts import caption_question, llava_prompt
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerFast,
)

IMAGE_TOKEN = "<image>"
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", IMAGE_TOKEN]
# llava-hf/llava-1.5-7b-hf's template: "USER: <image>\n{text} ASSISTANT:" (images first, then the text).
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] + ' ' }}{% endfor %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
_WORDS = (
    "A chair with four legs and a curved backrest. The seat is flat and square. "
    "A bottle with a narrow neck, a round cap and a tall cylindrical body. "
    "A spoon whose bowl is shaped like a soccer ball and whose handle is a leg with a sock and a shoe. "
    "The lamp has a conical shade on a thin vertical stem above a round base. "
    "A phone case with rounded corners, a camera opening and side buttons. "
    "The front, rear, left side, right side, top and bottom views show a rectangular housing. "
    "Describe the object's shape and the features visible in this view in one or two sentences. "
    "Do not mention the drawing style, lines or the patent. USER: ASSISTANT: FIG. perspective view elevational plan"
)


def training_texts() -> list[str]:
    """A few dozen real strings: caption-like sentences and real prompts, so prompt words get their own tokens."""
    sentences = [s.strip() + "." for s in _WORDS.split(".") if s.strip()]
    metas = [{"title": t, "view": v, "view_description": f"a {v} view of the {t.lower()}"}
             for t in ("Sport spoon", "Chair", "Bottle", "Lamp", "Phone case", "Vehicle wheel")
             for v in ("perspective", "front", "top", "side")]
    return sentences + [llava_prompt(caption_question(m)) for m in metas]


def build_tokenizer(vocab_size: int = 400, pad_vocab_to: int | None = None) -> PreTrainedTokenizerFast:
    """A byte-level BPE (any text encodes, decoding is exact) with LLaMA's special tokens and one `<image>` token.

    `pad_vocab_to` appends filler words (" x123") that encoding never produces, so a model with a real-size
    vocabulary (32064 for LLaVA-1.5) decodes every id it can emit to some text.
    """
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(training_texts(), trainer=trainer)
    if pad_vocab_to:
        tok = _pad_vocab(tok, pad_vocab_to)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", tok.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", extra_special_tokens={"image_token": IMAGE_TOKEN},
                                   padding_side="left")


def _pad_vocab(tok: Tokenizer, size: int) -> Tokenizer:
    """The same tokenizer with filler entries up to `size` ids ("Ġ" is byte-level for a leading space)."""
    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    first = max(vocab.values()) + 1
    vocab.update({f"\u0120x{i}": i for i in range(first, size)})
    return Tokenizer.from_str(json.dumps(spec))


def tiny_config(tokenizer: PreTrainedTokenizerFast, image_size: int = 56) -> LlavaConfig:
    """CLIP-vision 56 px / patch 14 (16 patches + CLS), 2-layer LLaMA; wide init so greedy argmax is never a tie."""
    vision = CLIPVisionConfig(image_size=image_size, patch_size=14, hidden_size=32, intermediate_size=64,
                              num_hidden_layers=2, num_attention_heads=2, projection_dim=32)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id, initializer_range=0.2)
    return LlavaConfig(vision_config=vision, text_config=text,
                       image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
                       image_seq_length=(image_size // 14) ** 2, vision_feature_layer=-2,
                       vision_feature_select_strategy="default", projector_hidden_act="gelu")


def build_processor(tokenizer: PreTrainedTokenizerFast, image_size: int) -> LlavaProcessor:
    """CLIP preprocessing at `image_size` and the llava-1.5 chat template; +1 CLS token, dropped by 'default'."""
    images = CLIPImageProcessor(size={"shortest_edge": image_size},
                                crop_size={"height": image_size, "width": image_size})
    return LlavaProcessor(image_processor=images, tokenizer=tokenizer, patch_size=14,
                          vision_feature_select_strategy="default", num_additional_image_tokens=1,
                          chat_template=CHAT_TEMPLATE)


def build_tiny_llava(folder: Path, seed: int = 0) -> Path:
    """Save a deterministic tiny LLaVA (model, tokenizer, processor) to `folder`; load it with from_pretrained."""
    folder = Path(folder)
    tokenizer = build_tokenizer()
    config = tiny_config(tokenizer)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.save_pretrained(folder)
    build_processor(tokenizer, config.vision_config.image_size).save_pretrained(folder)
    return folder


LLAVA_VOCAB = 32064  # llava-hf/llava-1.5-7b-hf's vocabulary (LLaMA's 32000 + image and padding tokens)


def llava_7b_config(tokenizer: PreTrainedTokenizerFast, text_layers: int = 32, vision_layers: int = 24) -> LlavaConfig:
    """llava-hf/llava-1.5-7b-hf's shapes: CLIP ViT-L/14 at 336 px and Llama-2-7B (layers overridable for debugging)."""
    vision = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=vision_layers,
                              num_attention_heads=16, image_size=336, patch_size=14, projection_dim=768,
                              hidden_act="quick_gelu", layer_norm_eps=1e-5)
    text = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=text_layers,
                       num_attention_heads=32, num_key_value_heads=32, vocab_size=LLAVA_VOCAB,
                       max_position_embeddings=4096, rms_norm_eps=1e-5, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return LlavaConfig(vision_config=vision, text_config=text,
                       image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN), image_seq_length=576,
                       projector_hidden_act="gelu", vision_feature_layer=-2,
                       vision_feature_select_strategy="default")


def random_llava_7b(device: str, text_layers: int = 32, vision_layers: int = 24
                    ) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    """Random-weight LLaVA-1.5-7B created in place on `device` in bf16 (nothing saved, nothing downloaded)."""
    tokenizer = build_tokenizer(pad_vocab_to=LLAVA_VOCAB)  # every id the random model emits decodes to a word
    config = llava_7b_config(tokenizer, text_layers, vision_layers)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlavaForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model.eval(), build_processor(tokenizer, 336)
