"""Model loading (default GGUF model, HF folders, adapters), prompt templates and the one prompt builder.

Import from the submodules (``iepile.modeling.loading``, ``.prompts``, ``.templates``, ``.tiny``); this package
module stays light so that ``import iepile.modeling`` does not pull in torch.
"""
