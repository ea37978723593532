"""The caption prompts in one versioned place: what the model is asked, and how its answer is cleaned."""

from __future__ import annotations

import re
from typing import Any

PROMPT_VERSION = "view-1"  # bump whenever the question, the template or the cleaning changes
MAX_WORDS = 60

_QUESTION = (
    "This is {view_phrase} from a US design patent for {title}.{description} "
    "Describe the object's shape and the features visible in this view in one or two sentences. "
    "Do not mention the drawing style, lines or the patent."
)
_BOILERPLATE = re.compile(
    r"^\s*(?:(?:the|this) (?:image|picture|drawing|illustration|figure|patent drawing) "
    r"(?:shows|depicts|features|displays|presents|is of|illustrates)|in (?:the|this) (?:image|drawing|view),?|"
    r"(?:here|this) is|sure[,!.]?|certainly[,!.]?)\s*",
    re.IGNORECASE,
)


def _clean(text: Any) -> str:
    return re.sub(r"\s+", " ", str(text or "")).strip()


def caption_question(meta: dict[str, Any]) -> str:
    """The question for one view: it knows the title, the view and the FIG. description (the sample json)."""
    title = _clean(meta.get("title")).rstrip(".") or "a product"
    view = _clean(meta.get("view"))
    view_phrase = f"the {view} view" if view else "a drawing"
    description = _clean(meta.get("view_description")).rstrip(".")
    description = f' The patent describes this figure as: "{description}".' if description else ""
    return _QUESTION.format(view_phrase=view_phrase, title=title.lower(), description=description)


def llava_prompt(question: str) -> str:
    """The LLaVA-1.5 conversation format, used when a processor carries no chat template."""
    return f"USER: <image>\n{question} ASSISTANT:"


def clean_caption(text: str, max_words: int = MAX_WORDS) -> str:
    """Strip the chat echo and opening boilerplate ("The image shows"), keep whole sentences within `max_words`."""
    text = _clean(text.split("ASSISTANT:")[-1])
    for _ in range(2):
        text = _BOILERPLATE.sub("", text, count=1).strip()
    if text[:1].islower():
        text = text[0].upper() + text[1:]
    words = text.split(" ")
    if len(words) > max_words:
        text = " ".join(words[:max_words])
        cut = max(text.rfind(". "), text.rfind("! "), text.rfind("? "))
        text = text[: cut + 1] if cut > len(text) // 3 else text.rstrip(",;:") + "…"
    return text
