"""Publishing (keras_convnets/publish.py): what may be replaced, and every step of a swap interrupted.

No TensorFlow: the mechanism on plain files and folders. The writers that use it are tested end to end, with real
SIGKILLs, in tests/test_nothing_lost.py."""

import json
import os
import subprocess
import sys

import pytest

from keras_convnets import publish

TEXT_KIND = publish.Kind("a test output", lambda path: open(path).read().startswith("ours"))
DIR_KIND = publish.Kind("a test folder", lambda path: os.path.isfile(os.path.join(path, "ours")), directory=True)


def _tree(path):
    """``{relative path: bytes}`` of every file under ``path`` (a file: itself), for byte-identity checks."""
    if os.path.isfile(path):
        return {"": open(path, "rb").read()}
    return {os.path.relpath(os.path.join(root, name), path): open(os.path.join(root, name), "rb").read()
            for root, _, names in os.walk(path) for name in names}


def _leftovers(folder):
    return sorted(name for name in os.listdir(folder) if name.startswith("."))


# ------------------------------------------------------------------------------------------- what is ours --

def test_a_user_folder_a_run_directory_and_a_foreign_file_are_refused_untouched(tmp_path):
    user = tmp_path / "mydocs"
    user.mkdir()
    (user / "notes.txt").write_text("precious")
    with pytest.raises(publish.OutputExistsError, match=r"mydocs exists and is not a test folder \(it holds "
                                                        r"notes\.txt\): it would be replaced; choose another --out"):
        publish.check_replaceable(str(user), DIR_KIND)
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    with pytest.raises(publish.OutputExistsError, match="is a training run directory"):
        publish.check_replaceable(str(run), DIR_KIND)
    (tmp_path / "m.out").write_text("theirs")
    with pytest.raises(publish.OutputExistsError, match="is not a test output: it would be overwritten"):
        publish.check_replaceable(str(tmp_path / "m.out"), TEXT_KIND)
    with pytest.raises(publish.OutputExistsError, match="is a file, not a test folder"):
        publish.check_replaceable(str(tmp_path / "m.out"), DIR_KIND)
    assert (user / "notes.txt").read_text() == "precious" and (tmp_path / "m.out").read_text() == "theirs"


def test_absent_empty_and_own_outputs_may_be_replaced(tmp_path):
    publish.check_replaceable(str(tmp_path / "absent"), DIR_KIND)
    (tmp_path / "empty").mkdir()
    publish.check_replaceable(str(tmp_path / "empty"), DIR_KIND)
    (tmp_path / "ours.out").write_text("ours, from before")
    publish.check_replaceable(str(tmp_path / "ours.out"), TEXT_KIND)


def test_hdf5_files_are_ours_only_with_the_mark(tmp_path):
    import h5py

    path = str(tmp_path / "w.weights.h5")
    with h5py.File(path, "w") as f:
        f["x"] = [1.0, 2.0]
    assert not publish.WEIGHTS.recognizes(path)  # someone else's weights file
    publish.mark_hdf5(path)
    assert publish.WEIGHTS.recognizes(path)
    (tmp_path / "not.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 10)  # truncated
    assert not publish.WEIGHTS.recognizes(str(tmp_path / "not.weights.h5"))


def test_saved_model_folders_are_ours_only_when_they_hold_nothing_else(tmp_path):
    folder = tmp_path / "sm"
    (folder / "variables").mkdir(parents=True)
    (folder / "assets").mkdir()
    (folder / "saved_model.pb").write_bytes(b"pb")
    assert not publish.SAVED_MODEL.recognizes(str(folder)), "no labels: not one of ours"
    (folder / "assets" / "labels.txt").write_text("cat\n")
    assert publish.SAVED_MODEL.recognizes(str(folder))
    (folder / "notes.txt").write_text("precious")
    assert not publish.SAVED_MODEL.recognizes(str(folder))


# ---------------------------------------------------------------------------------------------- the swap --

def _publish_unit(folder, contents):
    """Publishes ``{name: text}`` as one unit of files in ``folder``."""
    targets = {str(folder / name): TEXT_KIND for name in contents}
    with publish.publishing(targets) as staged:
        for name, text in contents.items():
            with open(staged[str(folder / name)], "w") as f:
                f.write(text)


def test_a_unit_is_swapped_in_whole_and_leaves_nothing_beside(tmp_path):
    _publish_unit(tmp_path, {"m.model": "ours 1", "m.labels": "ours a"})
    _publish_unit(tmp_path, {"m.model": "ours 2", "m.labels": "ours b"})
    assert (tmp_path / "m.model").read_text() == "ours 2" and (tmp_path / "m.labels").read_text() == "ours b"
    assert _leftovers(tmp_path) == []


def test_a_failure_while_writing_or_checking_leaves_the_old_unit_byte_identical(tmp_path):
    _publish_unit(tmp_path, {"m.model": "ours 1", "m.labels": "ours a"})
    before = _tree(str(tmp_path))

    class CheckFailed(Exception):
        pass

    with pytest.raises(CheckFailed):
        with publish.publishing({str(tmp_path / "m.model"): TEXT_KIND, str(tmp_path / "m.labels"): TEXT_KIND}) as s:
            open(s[str(tmp_path / "m.model")], "w").write("ours, half writ")
            raise CheckFailed()
    assert _tree(str(tmp_path)) == before and _leftovers(tmp_path) == []


def _interrupted_swap(folder, old, new, moved):
    """The state a kill leaves after the set-aside and ``moved`` of the renames of a swap of ``new`` over ``old``
    (``{name: text}``), without the commit mark: what :func:`publish._swap_in` does, stopped there."""
    for name, text in old.items():
        (folder / name).write_text(text)
    tmp = publish._mkdtemp(str(folder / next(iter(old))), "tmp")
    aside = publish._mkdtemp(str(folder / next(iter(old))), "old")
    publish._set_aside([str(folder / name) for name in new], aside)
    for name in list(new)[:moved]:
        staged = os.path.join(tmp, name)
        open(staged, "w").write(new[name])
        os.replace(staged, str(folder / name))
    return tmp, aside


@pytest.mark.parametrize("moved", [0, 1, 2])
def test_a_swap_killed_before_its_commit_is_rolled_back_by_the_next_publish(tmp_path, moved):
    """Killed after setting the old unit aside and after 0, 1 or 2 of its renames: the next publish into the same
    place restores the old unit byte for byte (a file that did not exist before is removed), then publishes."""
    old = {"m.model": "ours 1", "m.labels": "ours a"}
    _interrupted_swap(tmp_path, {"m.model": old["m.model"]}, {"m.model": "ours 2", "m.labels": "ours b"}, moved)
    publish.recover(str(tmp_path / "m.model"))
    assert (tmp_path / "m.model").read_text() == "ours 1"
    assert not (tmp_path / "m.labels").exists(), "it did not exist before the killed publish"
    assert _leftovers(tmp_path) == []


def test_a_swap_killed_after_its_commit_keeps_the_new_unit(tmp_path):
    tmp, aside = _interrupted_swap(tmp_path, {"m.model": "ours 1"}, {"m.model": "ours 2"}, 1)
    open(os.path.join(aside, publish._COMMITTED), "w").close()
    publish.recover(str(tmp_path / "m.model"))
    assert (tmp_path / "m.model").read_text() == "ours 2" and _leftovers(tmp_path) == []


def test_a_folder_swap_killed_between_its_renames_is_put_back(tmp_path):
    folder = tmp_path / "sm"
    folder.mkdir()
    (folder / "ours").write_text("1")
    aside = publish._mkdtemp(str(folder), "old")
    publish._set_aside([str(folder)], aside)  # renamed aside: the place is empty until the new one is renamed in
    assert not folder.exists()
    publish.recover(str(folder))
    assert (folder / "ours").read_text() == "1" and _leftovers(tmp_path) == []


def test_the_temporary_folder_of_a_live_publish_is_left_alone(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".m.model.tmp-{sleeper.pid}-abc"
        live.mkdir()
        dead = tmp_path / ".m.model.tmp-999999999-abc"  # no such process
        dead.mkdir()
        legacy = tmp_path / ".m.model.tmp-xyz"  # the earlier export code's name, without a pid
        legacy.mkdir()
        publish.recover(str(tmp_path / "m.model"))
        assert _leftovers(tmp_path) == [live.name]
    finally:
        sleeper.kill()
        sleeper.wait()


def test_the_earlier_exports_aside_folder_is_still_put_back(tmp_path):
    aside = tmp_path / ".saved_model.old-abc" / "previous"
    aside.mkdir(parents=True)
    (aside / "saved_model.pb").write_bytes(b"model")
    publish.recover(str(tmp_path / "saved_model"))
    assert (tmp_path / "saved_model" / "saved_model.pb").read_bytes() == b"model" and _leftovers(tmp_path) == []


def test_the_manifest_records_what_existed(tmp_path):
    (tmp_path / "a").write_text("x")
    aside = publish._mkdtemp(str(tmp_path / "a"), "old")
    publish._set_aside([str(tmp_path / "a"), str(tmp_path / "b")], aside)
    assert json.load(open(os.path.join(aside, publish._MANIFEST))) == {"a": True, "b": False}
    assert (tmp_path / "a").read_text() == "x", "a file stays in place until the new one replaces it atomically"
