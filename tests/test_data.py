"""Data: the readers on small made-up files, the task builders, the embedded sample, the tokenizer."""
import gzip
import json
import struct
import zlib
from pathlib import Path

import pytest
import torch

from compattn import data
from compattn.data import build as B
from compattn.data import readers as R
from compattn.data.tokenizer import load_tokenizer


def fake_build(root: Path) -> dict:
    """A manifest listing every file under ``root`` (a stand-in for a real build)."""
    files = {p.relative_to(root).as_posix(): {"bytes": p.stat().st_size, "sha256": B.sha256(p)}
             for p in sorted(root.rglob("*")) if p.is_file() and p.name != "manifest.json"}
    manifest = {"files": files, "id": B.manifest_id(files)}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return manifest


# --- readers -------------------------------------------------------------------------------------
def test_sword_ztext_reader(tmp_path):
    verses = ['<div osisID="Gen" sID="g1" type="book"/>', "<chapter sID=\"Gen.1\"/>In the <w>beginning</w>.",
              'God <note type="x">a note</note>said.', '<chapter sID="Gen.2"/>Second chapter.',
              '<div canonical="true" eID="g1" osisID="Gen" type="book"/>']
    block = "".join(verses).encode()
    compressed = zlib.compress(block)
    (tmp_path / "ot.bzz").write_bytes(compressed)
    (tmp_path / "ot.bzs").write_bytes(struct.pack("<III", 0, len(compressed), len(block)))
    index, offset = b"", 0
    for v in verses:
        index += struct.pack("<IIH", 0, offset, len(v.encode()))
        offset += len(v.encode())
    (tmp_path / "ot.bzv").write_bytes(index)
    for name in ("nt.bzz", "nt.bzs", "nt.bzv"):
        (tmp_path / name).write_bytes(b"")
    assert R.bible_books(tmp_path) == [["In the beginning. God said.", "Second chapter."]]


def _xdr_strings(values):
    out = b"X\n" + struct.pack(">iii", 2, 0x040201, 0x020300) + struct.pack(">ii", 16, len(values))
    for v in values:
        raw = v.encode()
        out += struct.pack(">ii", 9 | (1 << 15), len(raw)) + raw
    return out


def test_r_lazyload_reader(tmp_path):
    blob = _xdr_strings(["EMMA", "", "Emma Woodhouse, handsome, clever, and rich."])
    entry = struct.pack(">i", len(blob)) + zlib.compress(blob)
    (tmp_path / "Rdata.rdb").write_bytes(entry)
    # index: list(variables = list(emma = c(0, len))) with names attributes
    index = (b"X\n" + struct.pack(">iii", 2, 0x040201, 0x020300)
             + struct.pack(">ii", 19 | (1 << 9), 1)                     # VECSXP with attributes
             + struct.pack(">ii", 19 | (1 << 9), 1)                     #   variables: VECSXP
             + struct.pack(">ii", 13, 2) + struct.pack(">ii", 0, len(entry))
             + struct.pack(">i", 2 | (1 << 10)) + struct.pack(">i", 1) + struct.pack(">ii", 9, 5) + b"names"
             + struct.pack(">ii", 16, 1) + struct.pack(">ii", 9, 4) + b"emma" + struct.pack(">i", 254)
             + struct.pack(">i", 2 | (1 << 10)) + struct.pack(">i", 1) + struct.pack(">ii", 9, 5) + b"names"
             + struct.pack(">ii", 16, 1) + struct.pack(">ii", 9, 9) + b"variables" + struct.pack(">i", 254))
    (tmp_path / "Rdata.rdx").write_bytes(gzip.compress(index))
    assert R.r_lazyload(tmp_path / "Rdata.rdb") == {"emma": ["EMMA", "", "Emma Woodhouse, handsome, clever, and rich."]}
    with pytest.raises(ValueError, match="not an R XDR"):
        R._RReader(b"RDX2\n")


def test_dictd_and_fortune_readers(tmp_path):
    body = b"BATH, n.  A kind of mystic ceremony.\nCAT, n.  A soft automaton.\n"
    (tmp_path / "devil.dict.dz").write_bytes(gzip.compress(body))
    (tmp_path / "devil.index").write_text("bath\tA\tl\ncat\tl\tb\n")   # base64 offsets: l = 37, b = 27
    entries = R.dictd_entries(tmp_path / "devil.dict.dz")
    assert entries[0] == ("bath", "BATH, n.  A kind of mystic ceremony.\n")
    assert entries[1][1].startswith("CAT, n.")
    (tmp_path / "wisdom").write_text("First cookie\nacross lines.\n%\nSecond.\n%\n")
    assert R.fortunes(tmp_path / "wisdom") == ["First cookie across lines.", "Second."]


# --- task builders ---------------------------------------------------------------------------------
def test_splits_are_deterministic_and_grouped():
    assert B.split_of("lemma") == B.split_of("lemma")
    shares = [B.split_of(f"key{i}") for i in range(5000)]
    assert 0.77 < shares.count("train") / 5000 < 0.83


def test_wordnet_tasks_on_made_up_synsets():
    synsets = [
        {"offset": "1", "pos": "noun", "lexname": "noun.act", "lemmas": ["run"],
         "definition": "a score in baseball", "examples": ["he hit a home run"]},
        {"offset": "2", "pos": "verb", "lexname": "verb.motion", "lemmas": ["run"],
         "definition": "move fast on foot", "examples": ["she runs every day"]},
        {"offset": "3", "pos": "verb", "lexname": "verb.motion", "lemmas": ["run"],
         "definition": "flow, as of liquid", "examples": []},
    ]
    tasks = B.wordnet_tasks(synsets)
    assert {r["label"] for r in tasks["wn_pos"]} == {"noun", "verb"}
    assert [r["text"] for r in tasks["wn_pos_context"]] == ["he hit a home [run]", "she [runs] every day"]
    pairs = tasks["wn_sense_match"]
    assert {(r["text"], r["label"]) for r in pairs} >= {("she [runs] every day", 1), ("she [runs] every day", 0)}


# --- the embedded sample -------------------------------------------------------------------------------
def test_sample_loads_and_every_task_has_three_splits():
    corpus = data.load_corpus("sample")
    assert len(corpus) >= 10 and sum(map(len, corpus)) > 1000
    for task in data.TASKS:
        info = data.task_info(task, "sample")
        for split in ("train", "dev", "test"):
            rows = data.load_task(task, split, "sample")
            assert len(rows) == info["counts"][split] > 0
            assert {str(r["label"]) for r in rows} <= set(info["labels"])


def test_task_test_sentences_never_occur_in_the_corpus():
    corpus = data.load_corpus("sample")
    paragraphs = {p for doc in corpus for p in doc}
    text = "\n".join(paragraphs)
    for task in data.TASKS:
        for row in data.load_task(task, "test", "sample"):
            sentence = row["text"].replace("[", "").replace("]", "")
            assert sentence not in paragraphs, (task, sentence)
            if len(sentence.split()) >= 8:
                assert sentence not in text, (task, sentence)


def test_licences_ship_with_the_sample():
    assert "Princeton University" in (data.SAMPLE_DIR / "WORDNET_LICENSE.txt").read_text()
    assert "MIT License" in (data.SAMPLE_DIR / "VADER_LICENSE.txt").read_text()


def test_tokenizer_special_tokens_and_pairs():
    tok = load_tokenizer("sample")
    assert [tok.token_to_id(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [0, 1, 2, 3, 4]
    single = tok.encode("It is a truth universally acknowledged.")
    assert single.tokens[0] == "[CLS]" and single.tokens[-1] == "[SEP]"
    pair = tok.encode("a kind act", "the act of being kind")
    assert pair.tokens.count("[SEP]") == 2 and set(pair.type_ids) == {0, 1}


# --- bad input ---------------------------------------------------------------------------------------
def test_bad_input(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown task 'sst2'.*wn_pos"):
        data.load_task("sst2", "train")
    with pytest.raises(ValueError, match="split must be"):
        data.load_task("wn_pos", "validation")
    monkeypatch.setenv("COMPATTN_DATA", str(tmp_path))
    with pytest.raises(ValueError, match="python -m compattn data"):
        data.load_corpus("full")
    (tmp_path / "corpus.txt").write_bytes(b"caf\xe9 au lait\n")
    fake_build(tmp_path)
    with pytest.raises(ValueError, match="not UTF-8"):
        data.load_corpus("auto")
    (tmp_path / "corpus.txt").write_text("\n\n")
    fake_build(tmp_path)
    with pytest.raises(ValueError, match="holds no text"):
        data.load_corpus("full")
    with pytest.raises(ValueError, match="no tokenizer file"):
        load_tokenizer(str(tmp_path / "missing.json"))


def test_fetch_without_apt_get_says_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(B.shutil, "which", lambda name: None)
    with pytest.raises(B.DataUnavailable, match="apt-get/dpkg-deb not found.*sword-text-kjv"):
        B.fetch(tmp_path)


# --- synthetic probes --------------------------------------------------------------------------------
from compattn.data.probes import CLS, FIRST_SYMBOL, QUERY, make_probe  # noqa: E402


def test_probes_are_seeded_and_labelled_correctly():
    a, la, _ = make_probe("copy_offset", 50, 20, seed=1, offset=3)
    b, lb, _ = make_probe("copy_offset", 50, 20, seed=1, offset=3)
    assert torch.equal(a, b) and torch.equal(la, lb) and (a[:, 0] == CLS).all()
    for row, label in zip(a, la):
        q = (row == QUERY).nonzero().item()
        assert row[q - 3] - FIRST_SYMBOL == label
    ids, labels, _ = make_probe("local_ngram", 200, 24, seed=2)
    for row, label in zip(ids.tolist(), labels.tolist()):
        found = any(row[i:i + 3] == [3, 4, 5] for i in range(len(row) - 2))
        assert found == bool(label)
    ids, labels, _ = make_probe("brackets", 100, 16, seed=3)
    for row, label in zip(ids[:, 1:].tolist(), labels.tolist()):
        depth, ok = 0, True
        for t in row:
            depth += 1 if t == FIRST_SYMBOL else -1
            ok &= depth >= 0
        assert (ok and depth == 0) == bool(label)
    ids, labels, classes = make_probe("assoc_recall", 100, 12, seed=4)
    for row, label in zip(ids[:, 1:].tolist(), labels.tolist()):
        key = row[-1]
        value = row[row.index(key) + 1]
        assert value - FIRST_SYMBOL - 8 == label < classes


def test_probe_bad_input():
    with pytest.raises(ValueError, match="unknown probe"):
        make_probe("sorting", 10, 16)
    with pytest.raises(ValueError, match="length >= 8"):
        make_probe("brackets", 10, 4)


# --- all-or-nothing data, pinned downloads, reproducible tokenizer, cleaning (issue: runs and data) ---
def test_a_file_that_does_not_match_the_manifest_is_refused_by_name(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPATTN_DATA", str(tmp_path))
    folder = tmp_path / "tasks" / "wn_pos"
    folder.mkdir(parents=True)
    (tmp_path / "corpus.txt").write_text("A paragraph of text.\n")
    rows = "".join(json.dumps({"text": f"row {i}", "label": "noun"}) + "\n" for i in range(10))
    for split in ("train", "dev", "test"):
        (folder / f"{split}.jsonl").write_text(rows)
    (folder / "info.json").write_text(json.dumps({"labels": ["noun"], "counts": {}, "pair": False}))
    fake_build(tmp_path)
    assert len(data.load_task("wn_pos", "train", "full")) == 10
    assert data.data_id("full") == json.loads((tmp_path / "manifest.json").read_text())["id"]
    (folder / "train.jsonl").write_text(rows[:30])                          # a half-written file
    with pytest.raises(data.DataMismatch, match=r"train.jsonl has 30 bytes .*python -m compattn data"):
        data.load_task("wn_pos", "train", "full")
    (folder / "train.jsonl").write_text(rows.replace("row 1", "row 7"))      # same size, other bytes
    with pytest.raises(data.DataMismatch, match=r"train.jsonl does not match its sha256"):
        data.load_task("wn_pos", "train", "auto")
    (tmp_path / "manifest.json").unlink()                                   # an interrupted install
    with pytest.raises(data.DataMismatch, match="unfinished data build"):
        data.load_corpus("auto")
    assert data.load_corpus("sample")                                       # the sample is never affected


def test_install_moves_a_finished_build_into_place(tmp_path):
    target, work = tmp_path / "data", tmp_path / "data" / B.PARTIAL
    (target / "tasks" / "old").mkdir(parents=True)
    (target / "manifest.json").write_text("{}")
    (work / "tasks" / "new").mkdir(parents=True)
    for name in ("corpus.txt", "tokenizer.json", B.TOKENIZER_STAMP, "manifest.json"):
        (work / name).write_text(name)
    B._install(work, target)
    assert (target / "manifest.json").read_text() == "manifest.json"
    assert sorted(p.name for p in (target / "tasks").iterdir()) == ["new"]
    assert not work.exists() and not (target / ".old-tasks").exists()


def test_downloads_are_checked_against_their_pinned_sha256(tmp_path):
    good = b"the right bytes"
    files = {"pkg": ("pkg_1.0_all.deb", __import__("hashlib").sha256(good).hexdigest())}
    calls = []

    def download(missing, folder, payload):
        calls.append(list(missing))
        (folder / "pkg_1.0_all.deb").write_bytes(payload)

    (tmp_path / "pkg_1.0_all.deb").write_bytes(good[:5])                   # truncated
    B._checked(files, tmp_path, lambda m, f: download(m, f, good))
    assert calls == [["pkg"]] and (tmp_path / "pkg_1.0_all.deb").read_bytes() == good
    B._checked(files, tmp_path, lambda m, f: download(m, f, good))          # fine: nothing fetched
    assert calls == [["pkg"]]
    (tmp_path / "pkg_1.0_all.deb").write_bytes(b"bad")
    with pytest.raises(B.DataUnavailable, match="pinned sha256 .* even after a fresh download"):
        B._checked(files, tmp_path, lambda m, f: download(m, f, b"still bad"))
    assert not (tmp_path / "pkg_1.0_all.deb").exists(), "a bad file is never left to be unpacked"
    assert set(B.PINNED_DEBS) == set(B.DEBIAN_PACKAGES)
    assert B._version("fortunes_1%3a1.99.1-7.3_all.deb") == "1:1.99.1-7.3"


def test_the_data_command_never_shows_a_traceback(tmp_path, monkeypatch, capsys):
    from compattn.__main__ import main

    monkeypatch.setattr(B.shutil, "which", lambda name: None)
    assert main(["data", "--dir", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: apt-get/dpkg-deb not found") and err.count("\n") == 1
    monkeypatch.setattr(B, "fetch", lambda cache: (_ for _ in ()).throw(EOFError("Compressed file ended")))
    assert main(["data", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "EOFError: Compressed file ended" in err and "Traceback" not in err and err.count("\n") == 1


TRAIN_TWICE = """
import sys
from compattn.data import load_corpus
from compattn.data.tokenizer import train_tokenizer
train_tokenizer(load_corpus("sample"), vocab_size=8000).save(sys.argv[1])
"""


def test_tokenizer_training_is_reproducible_across_processes(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONHASHSEED", None)                 # fresh hash seeds: what made two builds differ
    procs = [subprocess.Popen([sys.executable, "-c", TRAIN_TWICE, str(tmp_path / f"t{i}.json")], env=env,
                              stderr=subprocess.PIPE) for i in range(2)]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()[-2000:]
    first, second = (tmp_path / "t0.json").read_bytes(), (tmp_path / "t1.json").read_bytes()
    assert first == second
    tok = load_tokenizer(str(tmp_path / "t0.json"))
    assert [tok.token_to_id(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [0, 1, 2, 3, 4]
    assert tok.get_vocab_size() == 8000 and tok.encode("a b").tokens == ["[CLS]", "a", "b", "[SEP]"]
    assert tok.get_added_tokens_decoder().keys() == {0, 1, 2, 3, 4}   # the ##c helpers are plain pieces


def test_control_characters_and_dictd_headers_leave_the_corpus(tmp_path):
    assert R.strip_controls("your whole ____\b\b\b\bBODY!\x07 ok\tfine") == "your whole BODY! ok\tfine"
    (tmp_path / "f").write_text("Ring\x07 the bell.\n%\nx\by\n%\n")
    assert R.fortunes(tmp_path / "f") == ["Ring the bell.", "y"]
    body = b"00-database-info\nThe original data ... PREFACE The Devil's Dictionary was begun\nCAT, n. A cat.\n"
    (tmp_path / "devil.dict.dz").write_bytes(gzip.compress(body))
    start, size = body.index(b"CAT"), len(b"CAT, n. A cat.\n")

    def b64(n):
        return R._B64[n // 64] + R._B64[n % 64]
    (tmp_path / "devil.index").write_text(f"00databaseinfo\tA\t{b64(start)}\ncat\t{b64(start)}\t{b64(size)}\n")
    assert R.dictd_entries(tmp_path / "devil.dict.dz") == [("cat", "CAT, n. A cat.\n")]


def test_contradictory_labels_are_dropped_and_vader_sentences_stay_in_one_split():
    rows = [{"text": "a", "text_b": "x", "label": 1}, {"text": "a", "text_b": "x", "label": 0},
            {"text": "a", "text_b": "y", "label": 0}, {"text": "b", "label": "n"}, {"text": "b", "label": "n"}]
    kept, dropped = B.drop_contradictions(rows)
    assert dropped == 1 and kept == rows[2:]
    same = [{"domain": d, "id": str(i), "score": 2.0, "text": f"sentence number {i % 50} is rated"}
            for i, d in enumerate(["movie", "nyt", "tweets", "amazon"] * 50)]
    splits: dict = {}
    for row in B.vader_tasks(same)["vader_sent"]:
        assert splits.setdefault(row["text"], row["split"]) == row["split"]


# --- the masked-LM dev split ---------------------------------------------------------------------
def test_the_mlm_dev_split_holds_out_whole_documents_and_no_bible():
    named = data.load_named_corpus("sample")
    split = data.mlm_split("sample")
    dev_names = {name for name, _ in named if name in B.MLM_DEV_DOCUMENTS}
    assert dev_names == set(B.MLM_DEV_DOCUMENTS)
    assert not any(name.startswith("bible/") for name in dev_names)      # both translations train
    assert len(split["train"]) + len(split["dev"]) == len(named)
    dev_text = {p for doc in split["dev"] for p in doc}
    assert not dev_text & {p for doc in split["train"] for p in doc}


def test_mlm_dev_blocks_share_no_more_than_stock_phrases_with_training():
    from compattn.data.overlap import dev_overlap

    result = B.mlm_dev_overlap(data.SAMPLE_DIR / "corpus.txt.gz", data.SAMPLE_DIR / "tokenizer.json")
    assert result["blocks"] > 500 and result["share"] <= B.MAX_DEV_OVERLAP, result
    # the check can fail: dev cut from a second translation of training verses overlaps nearly
    # everywhere (the sample's World English Bible books against its King James books)
    tokenizer = load_tokenizer("sample")

    def streams(docs):
        return [[i for e in tokenizer.encode_batch(d, add_special_tokens=False) for i in e.ids] for d in docs]

    named = dict(data.load_named_corpus("sample"))
    kjv = [doc for name, doc in named.items() if name.startswith("bible/kjv/")]
    web = [doc for name, doc in named.items() if name.startswith("bible/web/")]
    assert dev_overlap(streams(kjv), streams(web))["share"] > 4 * B.MAX_DEV_OVERLAP


def test_ngram_hashes_find_exactly_the_shared_spans():
    from compattn.data.overlap import dev_overlap, ngram_hashes

    assert len(ngram_hashes([1, 2, 3], 4)) == 0 and len(ngram_hashes(range(10), 8)) == 3
    train = [list(range(100, 180))]
    dev = [list(range(500, 540)) + list(range(120, 128)) + list(range(600, 630))]   # one shared 8-span
    assert dev_overlap(train, dev, body=62)["overlapping"] == 1
    dev[0][45] = 999                                                               # now only 7 shared
    assert dev_overlap(train, dev, body=62)["overlapping"] == 0


def test_a_damaged_sample_file_is_refused_by_name(tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "sample"
    shutil.copytree(data.SAMPLE_DIR, copy)
    monkeypatch.setattr(data, "SAMPLE_DIR", copy)
    data._CHECKED.clear()
    assert data.load_corpus("sample")
    corpus = copy / "corpus.txt.gz"
    corpus.write_bytes(corpus.read_bytes()[: corpus.stat().st_size // 3])        # cut to a third
    with pytest.raises(data.DataMismatch, match="corpus.txt.gz has .* bytes but its manifest says"):
        data.load_corpus("sample")
    task = copy / "tasks" / "wn_pos" / "train.jsonl.gz"
    raw = bytearray(task.read_bytes())
    raw[len(raw) // 2] ^= 0xFF                                                   # same size, one byte changed
    task.write_bytes(bytes(raw))
    with pytest.raises(data.DataMismatch, match="train.jsonl.gz does not match its sha256"):
        data.load_task("wn_pos", "train", "sample")
    data._CHECKED.clear()
