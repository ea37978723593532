"""The storage layer behaves the same on a local folder and on an object-store-like fsspec URL."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from designclip.pipeline.ingest.mirror import build_weekly_tar
from designclip.pipeline.ingest.week_archive import ingest_archive
from designclip.storage.folder import DataFolder
from designclip.storage.tables import WeekWriter, read_sheet_image, read_table

from tests.conftest import patent_folder

WEEK = dt.date(2021, 2, 9)


def test_a_week_on_a_memory_url_round_trips(tmp_path: Path) -> None:
    spoon = patent_folder("USD0909824")
    archive = build_weekly_tar(WEEK, [spoon], tmp_path / "I20210209.tar")
    folder = DataFolder(f"memory://designclip-{uuid.uuid4().hex[:8]}")
    assert not folder.is_local
    with WeekWriter(folder, WEEK, archive.name) as sink:
        ingest_archive(str(archive), archive.name, WEEK, sink)
    assert read_table(folder, "patents").column("title").to_pylist() == ["Sport spoon"]
    sheet = read_table(folder, "sheets").to_pylist()[2]
    assert read_sheet_image(folder, sheet) == (spoon / sheet["file"]).read_bytes()
    assert not [p for p in folder.find("") if ".tmp" in p], "no temporary files left behind"


def test_atomic_open_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    folder = DataFolder(tmp_path)
    folder.write_json("a/b.json", {"v": 1})
    with pytest.raises(RuntimeError), folder.atomic_open("a/b.json", "w") as f:
        f.write('{"v": 2, "trunc')
        raise RuntimeError("crash mid-write")
    assert folder.read_json("a/b.json") == {"v": 1}
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b.json"]


def test_paths_cannot_escape_the_root(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="escapes"):
        DataFolder(tmp_path).path("patents/../../etc/passwd")


@pytest.fixture(params=["local", "memory"])
def any_folder(request: pytest.FixtureRequest, tmp_path: Path) -> DataFolder:
    return DataFolder(tmp_path) if request.param == "local" else DataFolder(f"memory://df-{uuid.uuid4().hex[:8]}")


def test_listing_finding_and_fetching_without_reaching_for_fs(any_folder: DataFolder, tmp_path: Path) -> None:
    folder = any_folder
    for rel in ("a/x.json", "a/b/00000.tar", "a/b/00000.stats.json", "a/.tmpdir/y", "a/c/d/z.txt"):
        folder.write_json(rel, {"rel": rel})
    assert folder.ls_dirs("a") == ["b", "c"] and folder.ls_dirs("missing") == []
    assert folder.isdir("a/b") and not folder.isdir("a/x.json")
    assert folder.find("a/b") == ["a/b/00000.stats.json", "a/b/00000.tar"]
    assert folder.find("a/x.json") == ["a/x.json"] and folder.find("nothing") == []
    local = tmp_path / "fetched.json"
    folder.get_file("a/c/d/z.txt", str(local))
    assert local.read_text() == (folder.read_bytes("a/c/d/z.txt")).decode()
    import fsspec

    with fsspec.open(folder.url_of("a/x.json"), "rb") as f:  # a URL any fsspec reader opens
        assert f.read() == folder.read_bytes("a/x.json")


def test_remove_tree_takes_the_chosen_files_first(tmp_path: Path) -> None:
    folder = DataFolder(tmp_path)
    for rel in ("r/00000.tar", "r/00000.stats.json", "r/sub/card.json", "r/sub/index.faiss"):
        folder.write_json(rel, {})
    removed: list[str] = []
    rm = folder.fs.rm

    def recording_rm(path: str, recursive: bool = False) -> None:
        removed.append(path.rsplit("/", 1)[-1])
        rm(path, recursive=recursive)

    folder.fs.rm = recording_rm  # type: ignore[method-assign]
    assert folder.remove_tree("r", first=lambda rel: rel.endswith((".stats.json", "card.json")))
    assert sorted(removed[:2]) == ["00000.stats.json", "card.json"] and removed[2:] == ["r"]
    assert not folder.exists("r") and not folder.remove_tree("r")


def test_a_full_disk_fails_naming_the_file_and_leaves_nothing_half_written(tmp_path: Path) -> None:
    import errno

    from designclip.storage.folder import DataRootError

    folder = DataFolder(tmp_path)
    folder.write_json("shards/week.json", {"kept": True})
    with pytest.raises(DataRootError, match=r"no space left writing .*shards/week\.json.* free space"):
        with folder.atomic_open("shards/week.json", "w") as f:
            f.write('{"half": ')
            raise OSError(errno.ENOSPC, "No space left on device")
    assert folder.read_json("shards/week.json") == {"kept": True}
    assert folder.find("") == ["shards/week.json"], "the temporary is gone"


def test_an_unwritable_data_root_fails_at_once_naming_it(tmp_path: Path) -> None:
    from designclip.storage.folder import DataRootError

    (tmp_path / "a-file").write_text("not a folder")
    root = tmp_path / "a-file" / "data"
    with pytest.raises(DataRootError, match=rf"cannot write the data root {root} .*--data-root"):
        DataFolder(root).check_writable()
    DataFolder(tmp_path / "fresh").check_writable()  # a root that can be written is made and left empty
    assert list((tmp_path / "fresh").iterdir()) == []


KILLED_INGEST = """
import datetime as dt, os, signal, sys
from designclip.pipeline.ingest.week_archive import ingest_archive
from designclip.storage.folder import DataFolder
from designclip.storage.tables import WeekWriter

class Killed(WeekWriter):
    def add(self, grant, images):
        super().add(grant, images)
        self.images.fileobj.flush()
        os.kill(os.getpid(), signal.SIGKILL)  # kill -9 in the middle of the week

with Killed(DataFolder(sys.argv[1]), dt.date(2021, 2, 9), "I20210209.tar") as sink:
    ingest_archive(sys.argv[2], "I20210209.tar", dt.date(2021, 2, 9), sink)
"""


def test_a_rerun_sweeps_what_a_killed_ingest_of_its_week_left_and_nothing_else(tmp_path: Path) -> None:
    import subprocess
    import sys

    archive = build_weekly_tar(WEEK, [patent_folder("USD0909824")], tmp_path / "I20210209.tar")
    data = tmp_path / "data"
    killed = subprocess.run([sys.executable, "-c", KILLED_INGEST, str(data), str(archive)], timeout=120)
    assert killed.returncode == -9
    left = sorted(p.relative_to(data).as_posix() for p in data.rglob(".*.tmp"))
    assert "images/.I20210209.tar" in " ".join(left) and len(left) == 5  # 4 tables and the images tar
    other = data / "images" / ".I20210216.tar.0badc0de.tmp"  # another week being ingested now: not ours
    other.write_bytes(b"theirs")
    folder = DataFolder(data)
    with WeekWriter(folder, WEEK, archive.name) as sink:
        ingest_archive(str(archive), archive.name, WEEK, sink)
    assert [p.relative_to(data).as_posix() for p in data.rglob(".*.tmp")] == ["images/.I20210216.tar.0badc0de.tmp"]
    assert read_table(folder, "patents").num_rows == 1


def test_remove_temporaries_of_takes_only_that_files_temporaries(tmp_path: Path) -> None:
    folder = DataFolder(tmp_path)
    names = [".a.tar.0123abcd.tmp", ".a.tar.upload.tmp", ".a.tar.0123abcd.tmp.x", ".ab.tar.0123abcd.tmp",
             ".b.tar.0123abcd.tmp", "a.tar"]
    for n in names:
        (Path(folder.makedirs("d")) / n).write_bytes(b"x")
    assert folder.remove_temporaries_of("d/a.tar") == 2
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == sorted(names[2:])
    assert folder.remove_temporaries_of("nowhere/a.tar") == 0
