"""Caches (hits, keys, atomic publication under concurrency) and artifacts between jobs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from conveyor.local.cache import TMP_PREFIX, LocalCache
from tests.local.conftest import RunPipeline, conveyor_process, pipeline_yaml

CACHED = """
stages:
  - name: s
    jobs:
      - name: install
        cache: {{key: "deps-{{{{ hashFiles('**/deps.lock') }}}}", paths: [vendor], skipOnHit: true}}
        commands:
          - echo ran >> {counter}
          - mkdir -p vendor && cp sub/deps.lock vendor/copy
"""


def test_cache_miss_then_hit_skips_the_commands(run_pipeline: RunPipeline, tmp_path: Path) -> None:
    counter = tmp_path / "runs.txt"
    body = CACHED.format(counter=counter)
    files = {"sub/deps.lock": "left-pad 1.0\n"}
    first = run_pipeline(body, files=files)
    second = run_pipeline(body, files=files)
    assert (first.code, second.code) == (0, 0)
    assert first.job("install")["cachedHit"] is False
    assert second.job("install")["cachedHit"] is True
    assert counter.read_text().splitlines() == ["ran"], "the commands ran on a cache hit"
    assert "commands skipped" in second.log("install")


def test_cache_key_follows_the_lockfile(run_pipeline: RunPipeline, tmp_path: Path) -> None:
    counter = tmp_path / "runs.txt"
    body = CACHED.format(counter=counter)
    keys = []
    for lock in ("left-pad 1.0\n", "left-pad 2.0\n", "left-pad 1.0\n"):
        result = run_pipeline(body, files={"sub/deps.lock": lock})
        assert result.code == 0
        keys.append(next(line for line in result.log("install").splitlines() if "key" in line))
    assert keys[0] != keys[1], "a changed lockfile kept the same cache key"
    assert keys[0].replace("miss", "hit") == keys[2]
    assert len(counter.read_text().splitlines()) == 2  # the third run hit the first entry


def test_concurrent_runs_never_expose_a_half_written_entry(tmp_path: Path) -> None:
    files = 400
    source = tmp_path / "src"
    source.mkdir()
    (source / "pipeline.yaml").write_text(
        pipeline_yaml(
            f"""
            stages:
              - name: s
                jobs:
                  - name: fill
                    cache: {{key: shared, paths: [out]}}
                    commands:
                      - mkdir out && for i in $(seq {files}); do echo "$i" > out/f$i; done
            """
        )
    )
    cache_dir = tmp_path / "cache"
    cache = LocalCache(cache_dir)
    seen_partial: list[int] = []
    seen_complete = 0
    procs = [
        conveyor_process(
            "run",
            str(source / "pipeline.yaml"),
            "--cache-dir",
            str(cache_dir),
            "--workdir",
            str(tmp_path / f"work{i}"),
        )
        for i in range(2)
    ]
    while any(p.poll() is None for p in procs):
        entry = cache.lookup("shared")
        if entry is not None:
            count = len(list((entry / "files" / "out").iterdir()))
            if count != files:
                seen_partial.append(count)
            seen_complete += 1
        time.sleep(0.001)
    outputs = [p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert not seen_partial, f"a reader saw an entry with {seen_partial[0]} of {files} files"
    assert seen_complete > 0 or cache.lookup("shared") is not None
    assert [p.name for p in cache_dir.iterdir()] == ["shared"], "temporary copies were left"
    saved = sum("cache saved" in out for out, _ in outputs)
    # The other run lost the race, or (when it started late) found the entry: a hit.
    other = sum("saved by another run" in out or "cache hit" in out for out, _ in outputs)
    assert (saved, other) == (1, 1), outputs


def test_racing_writers_publish_one_complete_entry(tmp_path: Path) -> None:
    workspaces = []
    for i in range(4):
        ws = tmp_path / f"ws{i}"
        (ws / "data").mkdir(parents=True)
        for j in range(100):
            (ws / "data" / f"f{j}").write_text(f"writer {i}\n")
        workspaces.append(ws)
    cache = LocalCache(tmp_path / "cache")
    results: list[bool] = []
    barrier = threading.Barrier(len(workspaces))

    def write(ws: Path) -> None:
        barrier.wait()
        results.append(cache.save("k", ws, ["data"]))

    threads = [threading.Thread(target=write, args=(ws,)) for ws in workspaces]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    entry = cache.lookup("k")
    assert entry is not None
    texts = {p.read_text() for p in (entry / "files" / "data").iterdir()}
    assert len(texts) == 1, "the published entry mixes files of several writers"
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(TMP_PREFIX)]


def test_an_unfinished_entry_is_never_read(tmp_path: Path) -> None:
    cache = LocalCache(tmp_path)
    (tmp_path / f"{TMP_PREFIX}k-123" / "files").mkdir(parents=True)
    (tmp_path / "k").mkdir()  # a directory without its manifest is not a published entry
    assert cache.lookup("k") is None
    assert cache.restore("k", tmp_path / "ws") is False


def test_artifacts_are_restored_into_dependents_only(run_pipeline: RunPipeline) -> None:
    result = run_pipeline(
        """
        stages:
          - name: build
            jobs:
              - name: build
                commands: ["mkdir -p dist && echo v1 > dist/app.txt && echo x > scratch.txt"]
                artifacts: {paths: [dist/]}
              - {name: unrelated, commands: ["test ! -e dist/app.txt"]}
          - name: deploy
            jobs:
              - name: deploy
                dependsOn: [build]
                commands: ["grep -q v1 dist/app.txt", "test ! -e scratch.txt"]
        """
    )
    assert result.code == 0, result.out
    assert result.job("deploy")["status"] == "Succeeded"
    run_dir = next(p for p in result.workdir.iterdir() if p.is_dir())
    assert (run_dir / "artifacts" / "build" / "dist" / "app.txt").read_text() == "v1\n"
