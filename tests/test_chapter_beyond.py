"""Chapter 24 (beyond the paper) claims nothing about length generalisation that no
run supports: its takeaways name no length behaviour unless a length record left the
masked-LM plateau, and it says which run would answer the question, with a command that
exists."""
import re
import shlex
from pathlib import Path

import nbformat

from compattn import beyond, sweep
from compattn.config import PROFILES

CHAPTER = Path(__file__).resolve().parents[1] / "book" / "24_beyond.ipynb"
LENGTH_CLAIM = re.compile(
    r"extends? to any\s+length|generali[sz]es? (?:to|past|beyond)|keeps? working|"
    r"(?:works?|hold|holds) (?:on|for) longer|length-agnostic", re.IGNORECASE)


def markdown() -> str:
    nb = nbformat.read(CHAPTER, as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def section(text: str, heading: str) -> str:
    start = text.index(heading)
    following = re.search(r"^#{1,3} ", text[start + len(heading):], re.M)
    end = following.start() if following else len(text)
    return text[start:start + len(heading) + end]


def answered() -> bool:
    records = sweep.load_records(sweep.best_available(experiment="beyond"))
    return any(beyond.off_plateau(records).values())


def test_the_takeaways_make_no_length_claim_without_a_run():
    takeaways = section(markdown(), "## Key takeaways")
    claims = LENGTH_CLAIM.findall(takeaways)
    assert answered() or not claims, (
        f"the takeaways claim {claims} but no length run left the masked-LM plateau")


def test_the_claim_pattern_catches_the_old_takeaway():
    old = ("- Clipped relative terms, biases per offset and fixed-width convolutions "
           "extend to any\n  length by construction; learned absolute rows do not.")
    assert LENGTH_CLAIM.search(old)


def test_the_chapter_names_the_run_that_would_answer_it():
    part = section(markdown(), "### The run that would answer it")
    block = re.search(r"```sh\n(.*?)```", part, re.S)
    assert block, "no command in the section"
    words = shlex.split(block[1].replace("\\\n", " "))
    assert words[:4] == ["python", "-m", "compattn", "beyond"]
    profile = words[words.index("--profile") + 1]
    assert profile in PROFILES and PROFILES[profile].beyond
    assert words[words.index("--out") + 1] == f"compattn/results/beyond-{profile}"
