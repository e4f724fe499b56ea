"""_done.json vouches for its stage's outputs: a changed file is noticed, cheaply."""

import os

from refusal_atlas.pipeline.integrity import changed_outputs, record_outputs


def test_recorded_outputs_detect_truncation_edits_and_deletion(tmp_path):
    (tmp_path / "a.json").write_text('{"x": 1}')
    (tmp_path / "b.bin").write_bytes(b"\0" * 1000)
    rec = record_outputs(tmp_path, ["a.json", "b.bin", "never_written.json"])
    assert set(rec) == {"a.json", "b.bin"}
    assert changed_outputs(tmp_path, rec) == []

    data = bytearray((tmp_path / "b.bin").read_bytes())
    data[500] ^= 1  # a flipped byte, same size
    (tmp_path / "b.bin").write_bytes(bytes(data))
    assert changed_outputs(tmp_path, rec) == ["b.bin"]

    (tmp_path / "a.json").write_text('{"x"')  # truncated
    (tmp_path / "b.bin").unlink()
    assert changed_outputs(tmp_path, rec) == ["a.json", "b.bin"]


def test_a_touched_but_identical_file_is_not_changed(tmp_path):
    (tmp_path / "a.json").write_text("{}")
    rec = record_outputs(tmp_path, ["a.json"])
    st = (tmp_path / "a.json").stat()
    os.utime(tmp_path / "a.json", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert changed_outputs(tmp_path, rec) == []
