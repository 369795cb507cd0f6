"""Teachers of the RoBERTa family, rewritten as the BERT they are.

A ``RobertaForSequenceClassification`` (also XLM-RoBERTa, CamemBERT) has BERT's encoder layer for layer under
other names. Three things differ, and none changes the function on right-padded inputs:

- positions start after the padding index: RoBERTa's position ``i + pad + 1`` is BERT's position ``i``, so the
  BERT keeps the table from row ``pad + 1`` on (``max_position_embeddings - pad - 1`` positions);
- the classification head reads the first token through ``dense`` + tanh + ``out_proj``: that is BERT's pooler
  (``dense`` + tanh) and classifier, with dropout only in training;
- one token type (``type_vocab_size`` 1), which the BERT keeps.

So the converted teacher computes the same logits, and students, inheritance and the supernet need nothing
else. The tokenizer stays the teacher's own.
"""

from __future__ import annotations

from typing import Any

from ..errors import KdnasError

CONVERTIBLE = ("roberta", "xlm-roberta", "camembert")
_HEAD = {"classifier.dense.weight": "bert.pooler.dense.weight", "classifier.dense.bias": "bert.pooler.dense.bias",
         "classifier.out_proj.weight": "classifier.weight", "classifier.out_proj.bias": "classifier.bias"}


def as_bert(model: Any) -> Any:
    """The ``BertForSequenceClassification`` that computes what the RoBERTa-family ``model`` computes, in eval mode."""
    import torch  # noqa: PLC0415  lazy: torch
    from transformers import BertConfig, BertForSequenceClassification  # noqa: PLC0415  lazy: transformers

    cfg = model.config
    pad = int(cfg.pad_token_id)
    offset = pad + 1
    bert_cfg = BertConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads, intermediate_size=cfg.intermediate_size,
        hidden_act=cfg.hidden_act, hidden_dropout_prob=cfg.hidden_dropout_prob,
        attention_probs_dropout_prob=cfg.attention_probs_dropout_prob,
        max_position_embeddings=int(cfg.max_position_embeddings) - offset, type_vocab_size=cfg.type_vocab_size,
        layer_norm_eps=cfg.layer_norm_eps, pad_token_id=pad,
    )
    bert_cfg.num_labels = int(cfg.num_labels)
    bert_cfg.id2label, bert_cfg.label2id = dict(cfg.id2label), dict(cfg.label2id)
    bert_cfg.problem_type = cfg.problem_type
    state = {}
    for name, tensor in model.state_dict().items():
        if name.endswith(("position_ids", "token_type_ids")):
            continue  # buffers
        if name in _HEAD:
            state[_HEAD[name]] = tensor
        elif name.startswith("roberta."):
            key = "bert." + name[len("roberta."):]
            state[key] = tensor[offset:] if key == "bert.embeddings.position_embeddings.weight" else tensor
        else:
            state[name] = tensor  # an unknown tensor: load_state_dict names it below
    with torch.random.fork_rng(devices=[]):
        bert = BertForSequenceClassification(bert_cfg)
    missing, unexpected = bert.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))]
    if missing or unexpected:
        raise KdnasError(f"cannot read this {cfg.model_type} checkpoint as a BERT: {len(missing)} tensors missing "
                           f"({', '.join(missing[:3])}), {len(unexpected)} unexpected ({', '.join(unexpected[:3])})")
    return bert.eval()


__all__ = ["CONVERTIBLE", "as_bert"]
