"""Well-known students by name, accepted wherever an arch is (``--arch tinybert-4l``, ``--students``)."""

from __future__ import annotations

from ..space import Arch

# Encoder shapes as published (layers, hidden, heads, FFN). TinyBERT-6L has DistilBERT's shape; both are listed
# because users look for either name.
NAMED: dict[str, tuple[Arch, str]] = {
    "bert-base": (Arch(12, 768, 12, 3072), "BERT-base (Devlin et al., 2019)"),
    "bert-large": (Arch(24, 1024, 16, 4096), "BERT-large (Devlin et al., 2019)"),
    "distilbert": (Arch(6, 768, 12, 3072), "DistilBERT (Sanh et al., 2019)"),
    "minilm-l12": (Arch(12, 384, 12, 1536), "MiniLM-L12-H384 (Wang et al., 2020)"),
    "minilm-l6": (Arch(6, 384, 12, 1536), "MiniLM-L6-H384 / all-MiniLM-L6-v2"),
    "tinybert-6l": (Arch(6, 768, 12, 3072), "TinyBERT-6L (Jiao et al., 2020)"),
    "tinybert-4l": (Arch(4, 312, 12, 1200), "TinyBERT-4L (Jiao et al., 2020)"),
    "bert-medium": (Arch(8, 512, 8, 2048), "BERT-medium (Turc et al., 2019)"),
    "bert-small": (Arch(4, 512, 8, 2048), "BERT-small (Turc et al., 2019)"),
    "bert-mini": (Arch(4, 256, 4, 1024), "BERT-mini (Turc et al., 2019)"),
    "bert-tiny": (Arch(2, 128, 2, 512), "BERT-tiny (Turc et al., 2019)"),
}
