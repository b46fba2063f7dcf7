"""`train sequence --flip`: half the training images of each batch mirrored left-right."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnedge.errors import InputError
from rnnedge.nets.classifier import ClassifierConfig
from rnnedge.train.classify import ClassifierTask, ClassifierTrainConfig, Examples, ShuffledBatches


def examples(count: int = 64) -> Examples:
    rng = np.random.default_rng(0)
    inputs = [rng.random((5, 7), dtype=np.float32) for _ in range(count)]  # 5 rows of 7 pixels
    return Examples(inputs, [np.int64(i % 3) for i in range(count)])


def test_flip_mirrors_about_half_the_rows_of_a_batch_and_nothing_else():
    data = examples()
    plain = ShuffledBatches(data, 64, torch.Generator().manual_seed(1))
    flipped = ShuffledBatches(data, 64, torch.Generator().manual_seed(1), flip=True)
    (a, lengths_a, targets_a), (b, lengths_b, targets_b) = plain.next_batch(), flipped.next_batch()
    assert torch.equal(targets_a, targets_b) and torch.equal(lengths_a, lengths_b)
    mirrored = [torch.equal(b[i], a[i].flip(-1)) for i in range(64)]
    same = [torch.equal(b[i], a[i]) for i in range(64)]
    assert all(m or s for m, s in zip(mirrored, same, strict=True))
    assert 20 <= sum(mirrored) <= 44  # ~Binomial(64, 0.5)
    assert torch.equal(b[mirrored.index(True)].flip(-1), a[mirrored.index(True)])


def test_flip_on_token_sequences_is_refused_in_one_line(tmp_path):
    config = ClassifierTrainConfig(out=str(tmp_path / "run"), flip=True)
    tokens = Examples([np.arange(4, dtype=np.int64)] * 4, [np.int64(0)] * 4)
    model_config = ClassifierConfig(input="tokens", vocab_size=8, num_classes=2)
    with pytest.raises(InputError, match="--flip mirrors feature sequences"):
        ClassifierTask(config, model_config, tokens, tokens, {}, torch.Generator())
