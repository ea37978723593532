"""Which release and model `search`, `serve` and `evaluate` use when the user names none: the only one the data
root holds (said aloud); with several, an error that lists them and how to pick."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from designclip.storage import layout
from designclip.storage.folder import DataFolder


@dataclass(frozen=True)
class Choice:
    """A release with a model that can serve a command: `--release RELEASE --model MODEL [--pretrained TAG]`."""

    release: str
    model: str
    pretrained: str | None = None
    tag: str = ""

    def options(self) -> str:
        extra = f" --pretrained {self.pretrained}" if self.pretrained else ""
        return f"--release {self.release} --model {self.model}{extra}"

    def names(self, model: str | None) -> bool:
        """True when `model` (as typed) is this choice's model: its name or its tag."""
        return model is None or model in (self.model, self.tag)


def indexed_choices(folder: DataFolder) -> list[Choice]:
    """Every (release, model) with a finished image index and the embeddings record naming the model."""
    from designclip.storage.embeddings import read_encoder_record
    from designclip.storage.indexes import read_card

    out = []
    for release in folder.ls_dirs("indexes"):
        if release.startswith(layout.GROWN_MARK):
            continue
        for tag in folder.ls_dirs(f"indexes/{release}"):
            record = read_encoder_record(folder, release, tag)
            if record is None or read_card(folder, release, tag, "image") is None:
                continue
            spec = record.get("spec") or {}
            out.append(Choice(release, str(spec.get("model") or tag), spec.get("pretrained"), tag))
    return out


def evaluable_choices(folder: DataFolder) -> list[Choice]:
    """Every finished release with every trained model (models/RUN) of the data root."""
    from designclip.storage.release import read_release_marker

    releases = [r for r in folder.ls_dirs("releases") if read_release_marker(folder, r) is not None]
    models = folder.ls_dirs("models")
    return [Choice(r, m, None, m) for r in releases for m in models]


def pick(choices: list[Choice], release: str | None, model: str | None, data_root: str, what: str,
         make: str) -> Choice:
    """The one choice matching what was given; otherwise a ValueError listing the candidates (or saying how to
    make one)."""
    fitting = [c for c in choices if (release is None or c.release == release) and c.names(model)]
    if len(fitting) == 1:
        return fitting[0]
    given = " and ".join(f"--{n} {v}" for n, v in (("release", release), ("model", model)) if v)
    if not fitting:
        where = f" for {given}" if given else ""
        if choices:
            listed = "\n".join(f"  {c.options()}" for c in choices)
            raise ValueError(f"nothing {what} under {data_root}{where}; what there is:\n{listed}")
        raise ValueError(f"nothing {what} under {data_root}{where}: {make}")
    listed = "\n".join(f"  {c.options()}" for c in fitting)
    raise ValueError(f"{len(fitting)} releases/models are {what} under {data_root}: choose one with --release and "
                     f"--model:\n{listed}")


def fill_release_and_model(args: argparse.Namespace, command: str) -> None:
    """Set args.release / args.model (and --pretrained) when they were left out and the data root has exactly one
    fitting release and model; say which on stderr."""
    if getattr(args, "index", None):
        if not args.model:
            fill_grown_model(args)
        return
    if args.release and args.model:
        return
    folder = DataFolder(args.data_root)
    if command == "evaluate":
        choice = pick(evaluable_choices(folder), args.release, args.model, args.data_root, "ready to evaluate "
                      "(a finished release and a trained model)", "build a release and train a model first "
                      "(`designclip demo` does both on the bundled sample)")
    else:
        choice = pick(indexed_choices(folder), args.release, args.model, args.data_root, "indexed for search",
                      "run `designclip demo` (the bundled sample) or `designclip embed` then `designclip index` "
                      "on a release")
    args.release, args.model = choice.release, choice.model
    args.pretrained = args.pretrained or choice.pretrained
    print(f"Using release {choice.release} and model {choice.model} (the only ones {command} can use under "
          f"{args.data_root}; --release and --model choose others)", file=sys.stderr, flush=True)


def fill_grown_model(args: argparse.Namespace) -> None:
    """`--index NAME` without --model: the grown index's only model, named as its first release's embeddings
    record names it."""
    from designclip.storage.embeddings import read_encoder_record
    from designclip.storage.grown_indexes import grown_models, read_grown_card

    folder = DataFolder(args.data_root)
    tags = grown_models(folder, args.index)
    if len(tags) != 1:
        listed = ", ".join(tags) or "none"
        raise ValueError(f"grown index {args.index!r} holds vectors of {len(tags)} models ({listed}): give --model")
    card = read_grown_card(folder, args.index, tags[0], "image") or {}
    first = (card.get("releases") or [{}])[0].get("release")
    spec = (read_encoder_record(folder, first, tags[0]) or {}).get("spec") or {} if first else {}
    args.model = str(spec.get("model") or tags[0])
    args.pretrained = args.pretrained or spec.get("pretrained")
    print(f"Using model {args.model} (the only one grown index {args.index} holds)", file=sys.stderr, flush=True)
