"""The results store: keyed rows, a torn last line cut before the next append."""

from refusal_atlas.sweeps import RESPONSES_FILE, RESULTS_FILE, ResultsStore


def test_store_keys_and_torn_tail(tmp_path):
    store = ResultsStore(tmp_path)
    assert store.results_path.name == RESULTS_FILE
    assert store.responses_path.name == RESPONSES_FILE
    row = {"condition": "baseline", "prompt_id": "p0", "response": "hi"}
    store.append(store.responses_path, [row])
    with open(store.responses_path, "a") as fh:
        fh.write('{"condition": "baseline", "prompt_id": "p')
    store.append(store.responses_path, [{**row, "prompt_id": "p1"}])
    assert list(store.generated()) == [("baseline", "p0"), ("baseline", "p1")]
    store.append(store.results_path, [{**row, "judge": "a"}, {**row, "judge": "b"}])
    assert store.judged("b")[("baseline", "p0")]["judge"] == "b"
    assert store.judged()[("baseline", "p0")]["judge"] == "a"
    assert store.generated()[("baseline", "p0")] == row  # responses first
