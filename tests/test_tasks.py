"""The downstream tasks measure what they claim: word_order has no surface cue and reads
order, the cue rules find a planted cue and invent none, vader's splits share no sentence up
to case and punctuation, WordNet definitions carry no quoted examples."""
import random

import pytest

from compattn import data
from compattn.data import build as B
from compattn.data import cues
from compattn.data.order import movable, order_rows, shuffle_interior
from compattn.data.readers import definition_of, normalised
from compattn.data.tokenizer import load_tokenizer
from compattn.protocol import PROTOCOL_V3

BOUND = PROTOCOL_V3["max_cue_advantage"]


def split(rows):
    return ([r for r in rows if r["split"] == "train"], [r for r in rows if r["split"] == "test"])


# --- word_order ----------------------------------------------------------------------------------
def test_a_shuffle_keeps_the_ends_the_punctuation_and_the_words():
    for sentence in ("The film , in the end , is a joy to watch and very funny .",
                     "Often silly and gross but rarely as moronic as some campus films"):
        words = sentence.split()
        for h in range(30):
            shuffled = shuffle_interior(words, h)
            assert shuffled != words and sorted(shuffled) == sorted(words)
            assert shuffled[0] == words[0] and shuffled[-1] == words[-1]
            fixed = set(range(len(words))) - set(movable(words))
            assert all(shuffled[i] == words[i] for i in fixed)      # commas stay where they were
    assert movable("Wasabi is fun, a good place to start.".split()) == [1, 3, 4, 5, 6]


def grammar_sentences(n, seed=0):
    """Made-up sentences with an order (``the ADJ NOUN VERB a NOUN .``) and varied endings."""
    rng = random.Random(seed)
    adjectives, nouns = ["old", "new", "dull", "bright", "slow"], ["film", "plot", "actor", "score", "cast"]
    verbs, ends = ["lifts", "sinks", "carries", "ruins"], [".", ".", ".", "!", "?", "''"]
    out = []
    for i in range(n):
        words = ["The", rng.choice(adjectives), rng.choice(nouns), rng.choice(verbs), "a",
                 rng.choice(adjectives), rng.choice(nouns), f"today{i}"]
        if rng.random() < 0.5:
            words += ["with", "the", rng.choice(nouns)]
        out.append({"domain": "movie", "id": str(i), "score": 1.0, "text": " ".join(words + [rng.choice(ends)])})
    return out


def test_word_order_on_made_up_sentences_has_no_cue_and_needs_order():
    rows = order_rows(grammar_sentences(3000), B.split_of)
    train, test = split(rows)
    labels = [r["label"] for r in test]
    assert abs(labels.count("1") - labels.count("0")) <= 1                 # balanced in each split
    found = cues.surface_cues(train, test)
    assert found["advantage"] <= BOUND, found                               # a rotation ends in a word
    order = cues.order_baseline(train, test)
    assert order["bigrams"] >= order["chance"] + 0.2 and order["bag_of_words"] <= order["chance"] + 0.05


def test_word_order_on_the_sample_has_no_cue_and_the_build_recorded_it():
    train = data.load_task("word_order", "train", "sample")
    test = data.load_task("word_order", "test", "sample")
    found = cues.surface_cues(train, test)
    assert found["advantage"] <= BOUND, found
    info = data.task_info("word_order", "sample")
    assert info["surface_cues"] == found
    assert info["order_baseline"]["bigrams"] >= info["order_baseline"]["chance"] + 0.2
    assert cues.cue_problem("word_order", info, BOUND) is None


# --- the cue rules -------------------------------------------------------------------------------
def planted(n, seed, cue=None):
    """Random sentences; with ``cue`` the label shows in the last token, the first token or the
    length, else the label is a coin flip."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = rng.choice("ab")
        words = [f"w{rng.randrange(300)}" for _ in range(rng.randrange(5, 15))]
        if cue == "last_token":
            words.append("!" if label == "a" else ".")
        elif cue == "first_token":
            words.insert(0, "so" if label == "a" else "then")
        elif cue == "length":
            words = words[:4] if label == "a" else words + ["x"] * 6
        rows.append({"text": " ".join(words), "label": label})
    return rows


@pytest.mark.parametrize("cue", ["last_token", "first_token", "length"])
def test_a_planted_cue_is_found(cue):
    found = cues.surface_cues(planted(800, 1, cue), planted(400, 2, cue))
    assert found["best"] == cue and found["best_accuracy"] == 1.0 and found["advantage"] > 0.4


def test_a_task_without_a_cue_shows_none():
    found = cues.surface_cues(planted(3000, 3), planted(1500, 4))
    assert found["advantage"] <= BOUND, found
    assert found["rules"]["majority"] <= found["chance"]


def test_a_rule_is_fitted_on_train_and_scored_on_test():
    train = [{"text": "a b x", "label": "yes"}] * 5 + [{"text": "a b y", "label": "no"}] * 5
    test = [{"text": "c d x", "label": "no"}, {"text": "c d y", "label": "yes"}]
    assert cues.rule_accuracy(train, test, cues.last_token) == 0.0          # the cue flipped
    assert cues.rule_accuracy(train, train, cues.last_token) == 1.0
    rare = train[:2] + [{"text": "a b z", "label": "no"}] * 3               # x seen twice: too rare
    assert cues.fit_rule(rare, cues.last_token) == ({"z": "no"}, "no")


def test_the_data_check_refuses_a_word_order_with_a_cue(tmp_path, monkeypatch, capsys):
    from compattn.__main__ import main

    cued = {"surface_cues": {"chance": 0.5, "best": "last_token", "best_accuracy": 0.99, "advantage": 0.49}}
    assert "'last_token' scores 99.0%" in cues.cue_problem("word_order", cued, BOUND)
    assert cues.cue_problem("word_order", {"surface_cues": {**cued["surface_cues"], "advantage": 0.02}},
                            BOUND) is None
    manifest = {"corpus": {"sources": {}}, "tasks": {"word_order": {**cued, "counts": {},
                                                                    "contradictory_inputs_dropped": 0}}}
    monkeypatch.setattr(B, "build", lambda target: manifest)
    monkeypatch.setattr(B, "rebuild_differences", lambda target: pytest.fail("checked past the cue"))
    assert main(["data", "--dir", str(tmp_path), "--check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: word_order: the surface cue 'last_token'") and err.count("\n") == 1


def test_unknown_tokens_are_counted_per_piece_and_per_row():
    tokenizer = load_tokenizer("sample")
    rows = [{"text": "the good man"}, {"text": "the good man \U0001F600 \U0001F389"}]   # two emoji
    pieces = len(tokenizer.encode("the good man", add_special_tokens=False).ids)
    assert cues.unknown_tokens(rows, tokenizer) == {"tokens": round(2 / (2 * pieces + 2), 4), "rows": 0.5}
    recorded = data.task_info("vader_sent", "sample")["unknown_tokens"]
    assert set(recorded) == {"train", "dev", "test"} and 0 < recorded["test"]["rows"] < 0.2


# --- vader_sent and the WordNet definitions ------------------------------------------------------
def test_vader_splits_share_no_sentence_up_to_case_and_punctuation():
    variants = ["Great movie!!", "great movie.", "GREAT MOVIE", "Great, movie...", "great movie :)"]
    sentences = [{"domain": "movie", "id": f"{i}-{j}", "score": 2.0, "text": f"{v} number {i}"}
                 for i in range(40) for j, v in enumerate(variants)]
    rows = B.vader_tasks(sentences)["vader_sent"]
    assert len({(normalised(r["text"]), r["split"]) for r in rows}) == 40
    seen = {normalised(r["text"]) for r in data.load_task("vader_sent", "train", "sample")}
    assert not seen & {normalised(r["text"]) for r in data.load_task("vader_sent", "test", "sample")}


GLOSSES = {
    'loosening the ties that fasten something; "the tying of bow ties is an art; the untying is easy"':
        "loosening the ties that fasten something",
    'remove or withdraw gradually: "These new customs are chipping away at the quality of life"':
        "remove or withdraw gradually",
    'significant progress (especially in the phrase "make strides"); "they made big strides"':
        "significant progress",
    'a demand especially in the phrase "the call of duty"': "a demand",
    'a summary list; as in e.g. "a news roundup"': "a summary list",
    'close in; darkness enclosed him"': "close in",
    'a local branch where postal services are available"': "a local branch where postal services are available",
    'put (an image) into focus; "Please focus the image; we cannot enjoy the movie"': "put (an image) into focus",
    '(of a ball) "a ball that is out of play is dead"': "",
    "a motion picture; a film": "a motion picture; a film",
}


def test_definitions_lose_their_quoted_examples():
    assert {gloss: definition_of(gloss) for gloss in GLOSSES} == GLOSSES
    for task in ("wn_pos", "wn_supersense"):
        for part in ("train", "dev", "test"):
            assert not [r["text"] for r in data.load_task(task, part, "sample") if '"' in r["text"]]
    assert not [r for r in data.load_task("wn_sense_match", "train", "sample") if '"' in r["text_b"]]
