"""The order task: a bag of words is at chance, a bigram model is well above it (the shuffle
itself and the surface cues: tests/test_tasks.py)."""
from compattn.data import load_task
from compattn.data.build import split_of
from compattn.data.order import baselines, order_rows


def test_rows_are_balanced_and_use_each_sentence_once():
    sentences = [{"domain": "movie", "id": str(i), "score": 1.0,
                  "text": " ".join(f"w{i}_{j}" for j in range(8))} for i in range(400)]
    rows = order_rows(sentences + sentences[:10], split_of)
    assert len(rows) == 400
    share = sum(r["label"] == "0" for r in rows) / len(rows)
    assert 0.4 < share < 0.6


def test_baselines_on_the_embedded_sample():
    train, test = load_task("word_order", "train", "sample"), load_task("word_order", "test", "sample")
    b = baselines(train, test)
    assert b["bag_of_words"] <= b["chance"] + 0.03
    assert b["bigrams"] >= b["chance"] + 0.2
