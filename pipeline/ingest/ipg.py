"""The no-images weekly form (`ipgYYMMDD.xml`, optionally zipped): grant documents concatenated, each with its own
<?xml ?> and DOCTYPE, read one document at a time and none held past the XML cap."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from typing import BinaryIO

from designclip.pipeline.ingest.archive import ArchiveError, MemberRejected, PatentBundle
from designclip.pipeline.ingest.hostile import MemberLimits


def iter_ipg(path: str, limits: MemberLimits) -> Iterator[PatentBundle | MemberRejected]:
    """The no-images weekly form: documents concatenated in one XML (optionally zipped)."""
    try:
        if path.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                name = next((n for n in zf.namelist() if n.lower().endswith(".xml")), None)
                if name is None:
                    raise ArchiveError(f"{path} holds no ipg XML")
                with zf.open(name) as f:
                    yield from _ipg_docs(f, name, limits.max_xml_bytes)
            return
        with open(path, "rb") as f:
            yield from _ipg_docs(f, path.rsplit("/", 1)[-1], limits.max_xml_bytes)
    except (zipfile.BadZipFile, EOFError, OSError, RuntimeError, NotImplementedError) as exc:
        raise ArchiveError(f"the ipg file is unreadable: {type(exc).__name__}: {exc}") from exc


def _ipg_docs(f: BinaryIO, name: str, cap: int) -> Iterator[PatentBundle | MemberRejected]:
    """One document at a time (each starts with its own <?xml ?>), held up to `cap` bytes: a longer one becomes an
    error row and its bytes are dropped as they come."""
    buf, number, over = bytearray(), 1, False
    while line := f.readline(cap + 1):
        if line.lstrip().startswith(b"<?xml") and (buf or over):
            yield _ipg_doc(f"{name}#doc{number}", buf, over, cap)
            buf, number, over = bytearray(), number + 1, False
        if not over:
            buf += line
            if len(buf) > cap:
                buf, over = bytearray(), True
    if over or buf.strip():
        yield _ipg_doc(f"{name}#doc{number}", buf, over, cap)


def _ipg_doc(member: str, buf: bytearray, over: bool, cap: int) -> PatentBundle | MemberRejected:
    if over:
        return MemberRejected(member, "too_large", f"{member} is over the {cap}-byte cap for one grant XML")
    return PatentBundle(member, bytes(buf))
