"""The search runner with two workers: absolute and none of one recipe train at the same time
into one folder, under the runner's lock (a second runner on the folder is refused)."""
import subprocess
import sys

from compattn import search


def test_two_workers_share_a_recipe_folder_under_the_runners_lock(tmp_path):
    done = subprocess.run([sys.executable, "-m", "compattn", "search", "--arm", "curve", "--out", str(tmp_path),
                           "--parallel", "2", "--dry-run"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAILED" not in done.stdout, done.stdout
    records = search.load(tmp_path)
    assert sorted((r["multiple"], r["variant"]) for r in records) == [
        (4, "absolute"), (4, "none"), (8, "absolute"), (8, "none")]
