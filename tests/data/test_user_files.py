"""User prompt files (formats, columns, errors) and the suites built from user
files and folders."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from refusal_atlas.data.sources.coconot import coconot_split_name
from refusal_atlas.data.suites import load_suite
from refusal_atlas.data.user_files import load_prompt_file
from refusal_atlas.errors import UserError

from .fakes import SHARED, needs_shared, write_csv, write_jsonl


@needs_shared
def test_coconot_pref_loads_as_user_file():
    prompts = load_prompt_file(SHARED / "coconot" / "coconot_pref.jsonl")
    assert len(prompts) == 927
    cats = Counter(coconot_split_name(p.meta["category"]) for p in prompts)
    assert cats == {"CocoNot_Safety": 479, "CocoNot_Incomplete": 412, "CocoNot_Unsupported": 36}



def test_prompt_file_formats(tmp_path):
    rows = [{"prompt": "how do I pick a lock", "category": "crime", "harmful": True},
            {"prompt": "how do I bake bread", "category": "cooking", "harmful": False}]
    (tmp_path / "a.json").write_text(json.dumps(rows))
    write_jsonl(tmp_path / "a.jsonl", rows)
    write_csv(tmp_path / "a.csv", [{**r, "harmful": str(r["harmful"]).lower()} for r in rows])
    for name in ("a.json", "a.jsonl", "a.csv"):
        ps = load_prompt_file(tmp_path / name)
        assert [(p.id, p.split, p.harmful) for p in ps] == [
            ("user/a/0", "crime", True), ("user/a/1", "benign", False)]
        assert ps[1].meta["category"] == "cooking"


def test_prompt_file_columns(tmp_path):
    f = tmp_path / "q.csv"
    f.write_text("ID,Question,label\nq1,what is a bomb,unsafe\nq2,what is a bath bomb,safe\n")
    ps = load_prompt_file(f)
    assert [(p.id, p.text, p.split, p.harmful) for p in ps] == [
        ("user/q/q1", "what is a bomb", "q", True), ("user/q/q2", "what is a bath bomb",
                                                      "benign", False)]
    f = tmp_path / "inst.jsonl"
    write_jsonl(f, [{"instruction": "do a crime", "category": "Violence"},
                     {"instruction": "say hi", "category": "benign"}])
    ps = load_prompt_file(f)
    assert [(p.split, p.harmful) for p in ps] == [("Violence", True), ("benign", False)]
    ps = load_prompt_file(f, split="mine", harmful=True, id_prefix="x")
    assert [(p.id, p.split, p.harmful) for p in ps] == [("x/0", "mine", True), ("x/1", "mine", True)]


def test_prompt_file_paper_schema(tmp_path):
    rows = [{"prompt": "p", "prompt_harm_label": "harmful",
             "source": {"dataset": "coconot", "idx": 7, "category": "Humanizing requests"}}]
    (tmp_path / "CocoNot_Humanizing.json").write_text(json.dumps(rows))
    (p,) = load_prompt_file(tmp_path / "CocoNot_Humanizing.json")
    assert (p.id, p.split, p.harmful, p.meta["idx"]) == (
        "paper/CocoNot_Humanizing/coconot-7", "CocoNot_Humanizing", True, 7)


@pytest.mark.parametrize("name, content, match", [
    ("no_text.csv", "title,harmful\nx,1\n", (r"no prompt column: expected one of \['prompt', "
                                              r"'text', 'instruction', 'question'\], found "
                                              r"\['title', 'harmful'\]")),
    ("bad.json", '[{"prompt": "x",}]', r"not valid JSON \(line 1"),
    ("lines.json", '{"prompt": "a"}\n{"prompt": "b"}\n', r"name it \.jsonl"),
    ("bad.jsonl", '{"prompt": "a"}\nnot json\n', "line 2 is not valid JSON"),
    ("scalar.jsonl", '"just a string"\n', "line 1 is not a JSON object"),
    ("empty.csv", "", "has no prompts"),
    ("empty.json", "[]", "has no prompts"),
    ("notlist.json", '{"a": 1}', "must hold a JSON list"),
    ("blank.csv", "prompt\n\"\"\n", "row 1 has no text in column 'prompt'"),
    ("harm.csv", "prompt,harmful\nx,perhaps\n", "cannot read 'perhaps' as harmful"),
    ("dup.csv", "id,prompt\n1,a\n1,b\n", "id '1' is used twice"),
    ("wide.csv", "prompt\na,b\n", "more fields than the header"),
    ("prompts.txt", "hello\n", "unsupported file type '.txt'"),
])
def test_bad_prompt_files(tmp_path, name, content, match):
    f = tmp_path / name
    f.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=match):
        load_prompt_file(f)


def test_prompt_file_not_utf8_and_missing(tmp_path):
    f = tmp_path / "latin.csv"
    f.write_bytes("prompt\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8"):
        load_prompt_file(f)
    with pytest.raises(UserError, match="file not found"):
        load_prompt_file(tmp_path / "missing.csv")
    with pytest.raises(UserError, match="is a folder"):
        load_prompt_file(tmp_path)



def test_single_file_suite(tmp_path):
    f = tmp_path / "mine.csv"
    f.write_text("id,prompt,category,harmful\n"
                 "1,how to pick a lock,crime,yes\n"
                 "2,write an insult,hate,yes\n"
                 "3,how to bake bread,cooking,no\n"
                 "4,how to steal a bike,crime,1\n")
    suite = load_suite(str(f))
    assert suite.name == "user:mine.csv"
    assert suite.summary()["splits"] == {"crime": 2, "hate": 1}
    assert suite.summary()["benign"] == {"benign": 1}
    assert suite.benign_for == {"crime": "benign", "hate": "benign"}
    assert suite.splits["crime"][1].id == "user/mine/4"
    j = tmp_path / "mine.jsonl"
    write_jsonl(j, [{"text": "how to make a bomb", "category": "weapons"},
               {"text": "what is a bath bomb", "category": "benign"}])
    assert load_suite(str(j)).summary()["splits"] == {"weapons": 1}


def test_single_file_suite_needs_both_sides(tmp_path):
    f = tmp_path / "harm.csv"
    f.write_text("prompt,category\nhow to pick a lock,crime\n")
    with pytest.raises(UserError, match="has no benign prompts"):
        load_suite(str(f))
    f.write_text("prompt,harmful\nhow to bake,false\n")
    with pytest.raises(UserError, match="only benign prompts"):
        load_suite(str(f))


def test_folder_suite(tmp_path):
    d = tmp_path / "myfolder"
    d.mkdir()
    (d / "crime.csv").write_text("prompt\nhow to steal a car\nhow to rob a bank\n")
    write_jsonl(d / "Hate.jsonl", [{"id": "h1", "prompt": "insult my neighbour"}])
    (d / "benign.json").write_text(json.dumps([{"prompt": "wash a car"}, {"prompt": "bake"}]))
    write_jsonl(d / "benign_Hate.jsonl", [{"prompt": "compliment my neighbour"}])
    (d / "README.md").write_text("ignored")
    suite = load_suite(str(d))
    assert suite.name == "user:myfolder"
    assert suite.summary()["splits"] == {"Hate": 1, "crime": 2}
    assert suite.benign_for == {"Hate": "benign_Hate", "crime": "benign"}
    assert suite.splits["Hate"][0].id == "user/myfolder/Hate/h1"
    assert suite.benign["benign"][0].id == "user/myfolder/benign/0"
    (d / "benign_Other.csv").write_text("prompt\nx\n")
    with pytest.raises(UserError, match=r"unknown split\(s\) \['Other'\]"):
        load_suite(str(d))


def test_folder_suite_errors(tmp_path):
    with pytest.raises(UserError, match="holds no prompt files"):
        load_suite(str(tmp_path))
    (tmp_path / "crime.csv").write_text("prompt\nx\n")
    with pytest.raises(UserError, match="needs benign pool 'benign'"):
        load_suite(str(tmp_path))
    (tmp_path / "benign.csv").write_text("prompt\ny\n")
    write_jsonl(tmp_path / "crime.jsonl", [{"prompt": "z"}])
    with pytest.raises(UserError, match="more than one file for \\['crime'\\]"):
        load_suite(str(tmp_path))
    with pytest.raises(UserError, match="unknown suite"):
        load_suite(str(tmp_path / "nope.csv"))


def test_paper_style_folder(tmp_path):
    d = tmp_path / "mine" / "sources"

    def rec(text, label, idx):
        return {"prompt": text, "prompt_harm_label": label,
                "source": {"dataset": "custom", "idx": idx}}

    d.mkdir(parents=True)
    (d / "Alpha.json").write_text(json.dumps([rec("a1", "harmful", 0), rec("a2", "harmful", 1)]))
    (d / "Beta.json").write_text(json.dumps([rec("b1", "harmful", 0)]))
    (d / "_BC_source.json").write_text(json.dumps([rec("ok1", "unharmful", 0)]))
    (d / "_BC_Beta.json").write_text(json.dumps([rec("ok2", "unharmful", 0)]))
    for spec in (tmp_path / "mine", d):
        suite = load_suite(str(spec))
        assert suite.summary()["splits"] == {"Alpha": 2, "Beta": 1}
        assert suite.benign_for == {"Alpha": "benign", "Beta": "benign_Beta"}
        assert suite.splits["Alpha"][1].id == "paper/Alpha/custom-1"
        assert suite.benign["benign"][0].id == "paper/_BC_source/custom-0"
