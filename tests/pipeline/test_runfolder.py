import json

from refusal_atlas.pipeline.runfolder import RunFolder


def test_a_stage_started_with_the_same_keep_fingerprint_keeps_its_stores(tmp_path):
    run = RunFolder(tmp_path)
    folder, resuming = run.begin("labels", "fp1", keep="k1")
    assert not resuming
    (folder / "store.jsonl").write_text("row\n")
    run.finish("labels", "fp1", {}, 1.0)
    # other settings, same stores: the folder stays, only the completion marker goes
    assert run.kept("labels", "k1") and not run.kept("labels", "k2")
    folder, resuming = run.begin("labels", "fp2", keep="k1")
    assert resuming and (folder / "store.jsonl").exists() and run.done_marker("labels") is None
    assert json.loads((folder / "_started.json").read_text())["fingerprint"] == "fp2"
    # other stores: started afresh
    folder, resuming = run.begin("labels", "fp3", keep="k2")
    assert not resuming and not (folder / "store.jsonl").exists()
    # a folder started under the keep fingerprint itself (settings that were the stores'
    # alone, as before the stage had other settings) keeps its stores too
    run.begin("other", "k9")
    assert run.kept("other", "k9")
    # without a keep fingerprint a stage under other settings always starts afresh
    (folder / "store.jsonl").write_text("row\n")
    folder, resuming = run.begin("labels", "fp4")
    assert not resuming and not (folder / "store.jsonl").exists()
